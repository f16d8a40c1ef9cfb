"""Errors as RFC 9457 problem details: raise an AppError, one handler renders it."""

import logging
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm.exc import StaleDataError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

logger = logging.getLogger("app.errors")

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://eservice.example/problems/"


class FieldError(BaseModel):
    """One invalid field of a request."""

    loc: list[str | int]
    msg: str
    type: str


class Problem(BaseModel):
    """The body of every error response (RFC 9457), with a stable machine-readable `code`."""

    type: str
    title: str
    status: int
    detail: str | None = None
    code: str
    errors: list[FieldError] | None = None


class AppError(Exception):
    """Base of all errors the API answers on purpose."""

    status: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"
    title: ClassVar[str] = "Bad request"

    def __init__(
        self,
        detail: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        errors: Sequence[FieldError] | None = None,
        keep_changes: bool = False,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail
        self.headers = dict(headers or {})
        self.errors = list(errors) if errors is not None else None
        self.keep_changes = keep_changes


class NotFound(AppError):
    status, code, title = 404, "not_found", "Not found"


class Forbidden(AppError):
    status, code, title = 403, "forbidden", "Forbidden"


class Unauthenticated(AppError):
    status, code, title = 401, "unauthenticated", "Authentication required"

    def __init__(self, detail: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"WWW-Authenticate": "Bearer"})
        super().__init__(detail, **kwargs)


class Conflict(AppError):
    status, code, title = 409, "conflict", "Conflict"


class InvalidTransition(AppError):
    status, code, title = 409, "invalid_transition", "This change of status is not allowed"


class PreconditionFailed(AppError):
    status, code, title = 412, "precondition_failed", "The resource has changed meanwhile"


class RateLimited(AppError):
    """Too many attempts; `retry_after` seconds until the next one is considered."""

    status, code, title = 429, "rate_limited", "Too many requests"

    def __init__(self, retry_after: int, detail: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"Retry-After": str(max(1, retry_after))})
        super().__init__(detail, **kwargs)
        self.retry_after = retry_after


class ValidationFailed(AppError):
    status, code, title = 422, "validation_error", "The request is not valid"


# Unique constraints whose violation is a client error: constraint name -> error class.
# The SQLite driver reports columns ("table.column") instead of names, so both are registered.
_UNIQUE_VIOLATIONS: dict[str, type[AppError]] = {}


def register_unique_violation(constraint: str, columns: str, error: type[AppError]) -> None:
    """Declare that violating `constraint` (on `table.column`) means `error` for the client."""
    _UNIQUE_VIOLATIONS[constraint] = error
    _UNIQUE_VIOLATIONS[columns] = error


def error_for_integrity_error(exc: IntegrityError) -> AppError | None:
    """The client error a unique violation stands for, or None for a real fault."""
    message = str(exc.orig)
    cause = getattr(exc.orig, "__cause__", None)
    constraint = getattr(cause, "constraint_name", None)
    if constraint and constraint in _UNIQUE_VIOLATIONS:
        return _UNIQUE_VIOLATIONS[constraint]()
    for key, error in _UNIQUE_VIOLATIONS.items():
        if key in message:
            return error()
    return None


def problem_response(
    status: int,
    code: str,
    title: str,
    detail: str | None = None,
    *,
    errors: Sequence[FieldError] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body = Problem(
        type=TYPE_BASE + code,
        title=title,
        status=status,
        detail=detail,
        code=code,
        errors=list(errors) if errors is not None else None,
    )
    return JSONResponse(
        body.model_dump(exclude_none=True),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=dict(headers or {}),
    )


def _render(error: AppError) -> JSONResponse:
    return problem_response(
        error.status,
        error.code,
        error.title,
        error.detail,
        errors=error.errors,
        headers=error.headers,
    )


def field_errors(raw: Sequence[Any]) -> list[FieldError]:
    """Pydantic's error list, stripped of echoed input (it may hold a password)."""
    return [
        FieldError(
            loc=[part for part in err.get("loc", ()) if isinstance(part, str | int)],
            msg=str(err.get("msg", "invalid")),
            type=str(err.get("type", "invalid")),
        )
        for err in raw
    ]


_HTTP_CODES = {
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


# FastAPI's 400 for a JSON body it cannot decode at all (as opposed to its 422 for bad JSON).
_UNPARSABLE_BODY = "There was an error parsing the body"

_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


# RFC 9110's names where Python's HTTPStatus still has the older ones.
_HTTP_TITLES = {413: "Content Too Large", 422: "Unprocessable Content"}


def allowed_methods(request: Request) -> list[str]:
    """Every method some route of the app answers on this path.

    Starlette's own 405 names only the first matching route's methods; a path served by
    several routes (GET and POST on /users) must list them all. Each method is tried
    against the routing table, nested routers included.
    """
    routes = request.app.router.routes
    return [
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes
        )
    ]


def internal_error(exc: BaseException, request_id: str, path: str) -> JSONResponse:
    """Log an unexpected failure with its request id; answer 500 without any internals."""
    logger.error("unhandled error", exc_info=exc, extra={"request_id": request_id, "path": path})
    return problem_response(
        500,
        "internal_error",
        "Internal server error",
        f"The error was logged with request id {request_id}.",
    )


def _database_unavailable(exc: Exception) -> bool:
    """A failure of the database itself, not of the request (DB-API's OperationalError: the
    connection was refused or lost, SQLite stayed locked by another process for longer than
    the busy timeout), or the pool had no connection to give within its timeout. The
    request's transaction was rolled back."""
    if isinstance(exc, PoolTimeout | OperationalError):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


def install_error_handlers(app: FastAPI) -> None:
    """Render every error, the framework's own included, as problem+json."""

    async def on_app_error(_request: Request, exc: Exception) -> JSONResponse:
        if not isinstance(exc, AppError):  # pragma: no cover - registered for this class
            raise exc
        return _render(exc)

    async def on_http_error(request: Request, exc: Exception) -> JSONResponse:
        if not isinstance(
            exc, StarletteHTTPException
        ):  # pragma: no cover - registered for this class
            raise exc
        status = exc.status_code
        if status == 400 and exc.detail == _UNPARSABLE_BODY:
            # A body that is not even text (not UTF-8): malformed JSON like any other.
            return _render(
                ValidationFailed(
                    "The request body is not valid JSON.",
                    errors=[FieldError(loc=["body"], msg="not UTF-8 text", type="json_invalid")],
                )
            )
        phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
        phrase = _HTTP_TITLES.get(status, phrase)
        code = _HTTP_CODES.get(status, "http_error")
        detail = exc.detail if isinstance(exc.detail, str) and exc.detail != phrase else None
        headers = dict(exc.headers or {})
        if status == 405:
            headers["Allow"] = ", ".join(allowed_methods(request))
        return problem_response(status, code, phrase, detail, headers=headers)

    async def on_validation_error(_request: Request, exc: Exception) -> JSONResponse:
        if not isinstance(
            exc, RequestValidationError
        ):  # pragma: no cover - registered for this class
            raise exc
        error = ValidationFailed(
            "One or more fields are invalid.", errors=field_errors(exc.errors())
        )
        return _render(error)

    async def on_integrity_error(request: Request, exc: Exception) -> JSONResponse:
        if not isinstance(exc, IntegrityError):  # pragma: no cover - registered for this class
            raise exc
        error = error_for_integrity_error(exc)
        if error is None:
            return await on_unexpected_error(request, exc)
        return _render(error)

    async def on_stale_data(_request: Request, _exc: Exception) -> JSONResponse:
        return _render(PreconditionFailed("The resource was changed by someone else."))

    async def on_database_error(request: Request, exc: Exception) -> JSONResponse:
        if not _database_unavailable(exc):
            return await on_unexpected_error(request, exc)
        request_id = request.scope.get("state", {}).get("request_id", "-")
        logger.error(
            "database unavailable",
            extra={"request_id": request_id, "path": request.url.path, "error": type(exc).__name__},
        )
        return problem_response(
            503,
            "database_unavailable",
            "Service Unavailable",
            "The database cannot be reached just now; nothing was changed. Try again shortly.",
            headers={"Retry-After": "1"},
        )

    async def on_unexpected_error(request: Request, exc: Exception) -> JSONResponse:
        request_id = request.scope.get("state", {}).get("request_id", "-")
        return internal_error(exc, request_id, request.url.path)

    app.add_exception_handler(AppError, on_app_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(IntegrityError, on_integrity_error)
    app.add_exception_handler(StaleDataError, on_stale_data)
    app.add_exception_handler(DBAPIError, on_database_error)
    app.add_exception_handler(PoolTimeout, on_database_error)
    app.add_exception_handler(Exception, on_unexpected_error)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries for the problem+json answers an operation documents."""
    return {
        status: {
            "model": Problem,
            "content": {PROBLEM_JSON: {}},
            "description": HTTPStatus(status).phrase,
        }
        for status in statuses
    }
