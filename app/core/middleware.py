"""One pure-ASGI middleware for what every response needs: request id, headers, body limit.

Pure ASGI rather than BaseHTTPMiddleware: it adds microseconds, not a task per request.
"""

import itertools
import logging
import secrets
import time
from collections.abc import Iterable

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.errors import internal_error, problem_response
from app.core.logging import current_request_id

logger = logging.getLogger("app.access")

MAX_BODY_BYTES = 64 * 1024
_TOO_LARGE = f"Request bodies are limited to {MAX_BODY_BYTES // 1024} KiB."
_SECURITY_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
)
_NO_STORE = (b"cache-control", b"no-store")


class EdgeMiddleware:
    """Request id, security headers, `Cache-Control: no-store` on API answers, 64 KiB bodies.

    Every request passes here, so the hot path is kept to one scan of the request headers
    and one list extension of the response headers.
    """

    def __init__(self, app: ASGIApp, *, access_log: bool = False) -> None:
        self.app = app
        self.access_log = access_log
        # Request ids need to be unique, not secret: a random prefix per process and a counter.
        self._id_prefix = secrets.token_hex(4)
        self._id_counter = itertools.count(1)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming_id, declared = _read_headers(scope["headers"])
        request_id = incoming_id or f"{self._id_prefix}{next(self._id_counter):08x}"
        scope.setdefault("state", {})["request_id"] = request_id
        path: str = scope["path"]
        # Everything under /api/ may carry tokens or personal data: never cache it.
        extra_headers = [*_SECURITY_HEADERS, (b"x-request-id", request_id.encode())]
        no_store = path.startswith("/api/")
        started = time.perf_counter() if self.access_log else 0.0
        status_holder: list[int] = []
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > MAX_BODY_BYTES:
                    # Raised inside the app, so its error handlers render the 413.
                    raise HTTPException(413, _TOO_LARGE)
            return message

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder.append(message["status"])
                headers = [*message.get("headers", ()), *extra_headers]
                if no_store and not any(name == b"cache-control" for name, _ in headers):
                    headers.append(_NO_STORE)
                message["headers"] = headers
            await send(message)

        if declared is not None and declared > MAX_BODY_BYTES:
            # Refused before the application reads a byte, with the headers of every answer.
            too_large = problem_response(413, "payload_too_large", "Content Too Large", _TOO_LARGE)
            await too_large(scope, receive, send_with_headers)
            return

        request_id_token = current_request_id.set(request_id)
        try:
            await self.app(scope, limited_receive, send_with_headers)
        except Exception as exc:
            # Rendered here rather than by Starlette's outermost error middleware, so the
            # 500 carries the request id and security headers like every other answer.
            if status_holder:
                raise  # the response has begun; the server closes the connection
            response = internal_error(exc, request_id, path)
            await response(scope, receive, send_with_headers)
        finally:
            current_request_id.reset(request_id_token)
            if self.access_log:
                logger.info(
                    "request",
                    extra={
                        "request_id": request_id,
                        "method": scope["method"],
                        "path": path,  # never the query string: it could hold a token
                        "status": status_holder[0] if status_holder else 500,
                        "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                    },
                )


def _read_headers(headers: Iterable[tuple[bytes, bytes]]) -> tuple[str | None, int | None]:
    """A well-formed incoming `X-Request-ID` and the declared `Content-Length`, in one pass."""
    request_id: str | None = None
    length: int | None = None
    for name, value in headers:
        if name == b"content-length":
            try:
                length = int(value)
            except ValueError:
                length = None
        elif name == b"x-request-id":
            text = value.decode("latin-1")
            if 0 < len(text) <= 64 and all(c.isalnum() or c in "-_." for c in text):
                request_id = text
    return request_id, length


class ProblemCORSMiddleware(CORSMiddleware):
    """Starlette's CORS, with a refused preflight answered as problem+json like every error."""

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code != 400:
            return response
        reason = bytes(response.body).decode("utf-8", "replace")
        headers = {
            name: value
            for name, value in response.headers.items()
            if name not in ("content-length", "content-type")
        }
        return problem_response(400, "cors_rejected", "Bad Request", reason, headers=headers)
