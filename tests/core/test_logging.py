"""JSON log lines with the request id, and never a password or a token in any of them."""

import json
import logging
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.core.db import Database
from app.core.logging import JsonFormatter, RequestIdFilter, configure_logging
from app.core.permissions import Role
from app.core.state import AppState
from app.invitations.models import TokenPurpose
from app.invitations.tokens import issue_token
from app.main import create_app
from app.users.status import UserStatus
from tests.factories import PASSWORD, auth_headers, create_customer, create_user

NEW_PASSWORD = "a brand new passphrase for logging 7"
OTHER_PASSWORD = "yet another passphrase for the log 8"


@pytest.fixture
def logging_app(settings: Settings, database: Database) -> FastAPI:
    app = create_app(settings.model_copy(update={"access_log": True}), database)
    app.get("/api/v1/test-crash")(crash)
    return app


async def crash() -> None:
    raise RuntimeError("the handler failed")


@pytest.fixture
async def logged_client(logging_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=logging_app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


def json_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The service's log lines (the test's own HTTP client logs its request URLs)."""
    formatter = JsonFormatter()
    return [
        formatter.format(record)
        for record in caplog.records
        if not record.name.startswith(("httpx", "httpcore"))
    ]


async def test_request_log_line_is_json_with_request_id(
    logged_client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        response = await logged_client.get(
            "/healthz?token=should-not-appear", headers={"x-request-id": "req-42"}
        )
    assert response.status_code == 200
    entries = [json.loads(line) for line in json_lines(caplog)]
    [entry] = [e for e in entries if e["logger"] == "app.access"]
    assert entry["request_id"] == "req-42"
    assert entry["path"] == "/healthz"
    assert entry["status"] == 200
    assert entry["method"] == "GET"
    assert entry["level"] == "INFO"
    assert "should-not-appear" not in json.dumps(entries)


async def test_lines_logged_while_serving_a_request_name_its_id(
    logging_app: FastAPI, logged_client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    @logging_app.get("/api/v1/test-log")
    async def log_something() -> None:
        logging.getLogger("app.test").warning("something worth knowing")

    caplog.handler.addFilter(RequestIdFilter())
    with caplog.at_level(logging.INFO):
        first = await logged_client.get("/api/v1/test-log", headers={"x-request-id": "req-7"})
        second = await logged_client.get("/api/v1/test-log")
    assert (first.status_code, second.status_code) == (200, 200)
    logged = [
        json.loads(line) for line in json_lines(caplog) if json.loads(line)["logger"] == "app.test"
    ]
    assert [entry["request_id"] for entry in logged] == [
        "req-7",
        second.headers["x-request-id"],
    ]
    outside = logging.LogRecord("app.test", logging.INFO, __file__, 1, "idle", None, None)
    RequestIdFilter().filter(outside)
    assert not hasattr(outside, "request_id")


async def test_no_secret_reaches_any_log_line(
    logged_client: httpx.AsyncClient,
    logging_app: FastAPI,
    session: AsyncSession,
    state: AppState,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Drive every credential-carrying flow this build has; scan every record at DEBUG."""
    customer = await create_customer(session)
    admin = await create_user(session, state, customer, role=Role.CUSTOMER_PORTAL_ADMIN)
    invited = await create_user(session, state, customer, status=UserStatus.INVITED, password=None)
    setup_token, _ = await issue_token(
        session, invited.id, TokenPurpose.INVITATION, state.settings.invitation_ttl
    )
    headers = await auth_headers(session, state, admin)
    secrets = {
        PASSWORD,
        NEW_PASSWORD,
        OTHER_PASSWORD,
        setup_token,
        headers["Authorization"].split()[1],
    }

    with caplog.at_level(logging.DEBUG):
        await logged_client.get("/api/v1/test-crash", headers=headers)
        assert (await logged_client.get("/api/v1/me", headers=headers)).status_code == 200
        login = await logged_client.post(
            "/api/v1/auth/login", json={"login": admin.login, "password": PASSWORD}
        )
        assert login.status_code == 200
        wrong = await logged_client.post(
            "/api/v1/auth/login", json={"login": admin.login, "password": "wrong " + PASSWORD}
        )
        assert wrong.status_code == 401
        tokens = login.json()
        secrets |= {tokens["access_token"], tokens["refresh_token"]}
        refreshed = await logged_client.post(
            "/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
        )
        assert refreshed.status_code == 200
        secrets |= {refreshed.json()["access_token"], refreshed.json()["refresh_token"]}
        fresh = {"Authorization": f"Bearer {refreshed.json()['access_token']}"}
        inspected = await logged_client.post(
            "/api/v1/password-tokens/inspect", json={"token": setup_token}
        )
        assert inspected.status_code == 200
        setup = await logged_client.post(
            "/api/v1/password-setup",
            json={
                "token": setup_token,
                "password": NEW_PASSWORD,
                "password_confirmation": NEW_PASSWORD,
            },
        )
        assert setup.status_code == 200, setup.text
        renamed = await logged_client.patch(
            "/api/v1/me",
            json={"email": "new.address@example.com", "current_password": PASSWORD},
            headers=fresh,
        )
        assert renamed.status_code == 200, renamed.text
        changed = await logged_client.post(
            "/api/v1/me/password",
            json={"current_password": PASSWORD, "new_password": OTHER_PASSWORD},
            headers=fresh,
        )
        assert changed.status_code == 204, changed.text
        requests = 9

    lines = json_lines(caplog)
    assert any("unhandled error" in line for line in lines), "the crash was not logged"
    assert sum('"logger": "app.access"' in line for line in lines) == requests
    for line in lines:
        for secret in secrets:
            assert secret not in line, f"a secret reached the log: {line[:200]}"


def test_configure_logging_writes_json_and_silences_uvicorn_access(
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    try:
        configure_logging("INFO")
        logging.getLogger("app.test").info("hello", extra={"request_id": "r-1"})
        assert logging.getLogger("uvicorn.access").disabled
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
        logging.getLogger("uvicorn.access").disabled = False
    entry = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert entry["message"] == "hello"
    assert entry["request_id"] == "r-1"
    assert entry["logger"] == "app.test"
