# The two commands of the README, and the checks CI runs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LINT_PATHS := $(wildcard app tests migrations bench)

.PHONY: install run test lint typecheck openapi bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)  ## migrate, load the demo data, serve on 127.0.0.1:8000 (SQLite, mail to var/mail)
	$(BIN)/eservice db upgrade
	$(BIN)/eservice demo
	$(BIN)/eservice serve --host 127.0.0.1 --port 8000

lint: $(STAMP)
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)

typecheck: $(STAMP)
	$(BIN)/mypy


test: lint typecheck  ## ruff, mypy, the suite on SQLite and (when ESERVICE_TEST_DATABASE_URL is set) PostgreSQL
	env -u ESERVICE_TEST_DATABASE_URL $(BIN)/pytest -q
	@if [ -n "$$ESERVICE_TEST_DATABASE_URL" ]; then \
		echo "== PostgreSQL: $$ESERVICE_TEST_DATABASE_URL"; \
		$(BIN)/pytest -q; \
	fi

openapi: $(STAMP)
	$(BIN)/eservice openapi

bench: $(STAMP)  ## docs/benchmarks.md: wrk against the service and a bare FastAPI app (BENCH_ARGS="--db sqlite")
	@command -v wrk >/dev/null || apt-get install -y wrk >/dev/null 2>&1 || \
		{ echo "bench: wrk is missing; install it with: sudo apt-get install -y wrk" >&2; exit 1; }
	$(BIN)/python bench/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
