"""One pure-ASGI middleware for what every response needs: request id, headers, body limit.

Pure ASGI rather than BaseHTTPMiddleware: it adds microseconds, not a task per request.
"""

import logging
import secrets
import time

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.errors import internal_error, problem_response

logger = logging.getLogger("app.access")

MAX_BODY_BYTES = 64 * 1024
_TOO_LARGE = f"Request bodies are limited to {MAX_BODY_BYTES // 1024} KiB."
_SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]


class EdgeMiddleware:
    """Request id, security headers, `Cache-Control: no-store` on API answers, 64 KiB bodies."""

    def __init__(self, app: ASGIApp, *, access_log: bool = False) -> None:
        self.app = app
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming_request_id(scope) or secrets.token_hex(8)
        scope.setdefault("state", {})["request_id"] = request_id
        path: str = scope["path"]
        # Everything under /api/ may carry tokens or personal data: never cache it.
        no_store = path.startswith("/api/")
        started = time.perf_counter()
        status_holder: list[int] = []

        declared = _content_length(scope)
        if declared is not None and declared > MAX_BODY_BYTES:
            await _too_large(scope, receive, send, request_id)
            return

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
                headers = list(message.get("headers", []))
                headers.extend(_SECURITY_HEADERS)
                headers.append((b"x-request-id", request_id.encode()))
                if no_store and not any(name == b"cache-control" for name, _ in headers):
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

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


def _incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            text: str = value.decode("latin-1")
            if 0 < len(text) <= 64 and all(c.isalnum() or c in "-_." for c in text):
                return text
    return None


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _too_large(scope: Scope, receive: Receive, send: Send, request_id: str) -> None:
    response = problem_response(413, "payload_too_large", "Content Too Large", _TOO_LARGE)
    response.headers["x-request-id"] = request_id
    response.headers["x-content-type-options"] = "nosniff"
    await response(scope, receive, send)


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
