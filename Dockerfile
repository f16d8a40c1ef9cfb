# e:service portal API. Build: docker build -t eservice .
# Run:  docker run -p 8000:8000 --env-file .env -v eservice-var:/app/var eservice
FROM python:3.11-slim AS build

ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY app ./app
COPY migrations ./migrations
# A wheel, not an editable install: app/migrations (a link to migrations/) is packaged as
# real files, so the image's `eservice` finds its migrations without the source tree.
RUN pip wheel --no-deps --wheel-dir /wheels . \
    && python -m venv /venv \
    && /venv/bin/pip install /wheels/*.whl

FROM python:3.11-slim

ENV PATH=/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
COPY --from=build /venv /venv
RUN groupadd --system eservice \
    && useradd --system --gid eservice --home-dir /app --no-create-home eservice \
    && mkdir -p /app/var/keys /app/var/mail \
    && chown -R eservice:eservice /app
WORKDIR /app
USER eservice
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request, sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status != 200)"]
CMD ["eservice", "serve", "--host", "0.0.0.0"]
