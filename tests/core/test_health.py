"""Probes, response headers and CORS."""

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.core.db import Database, create_engine
from app.core.permissions import Role
from app.core.state import AppState
from app.main import create_app
from tests.factories import auth_headers, create_customer, create_user


async def call(app: FastAPI, method: str, path: str, **kwargs: object) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        return await client.request(method, path, **kwargs)  # type: ignore[arg-type]


async def test_healthz_answers_without_the_database(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_ok_when_the_database_answers(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.fixture(
    params=[
        "sqlite+aiosqlite:///{tmp}",  # a folder: SQLite cannot open it as a database
        "postgresql+asyncpg://postgres@127.0.0.1:1/nowhere",
    ],
    ids=["sqlite", "postgresql"],
)
async def unreachable(
    request: pytest.FixtureRequest, settings: Settings, tmp_path: Path
) -> AsyncIterator[FastAPI]:
    url = request.param.format(tmp=tmp_path)
    broken = settings.model_copy(update={"database_url": url})
    database = Database(create_engine(broken))
    yield create_app(broken, database, run_background=False)
    await database.dispose()


async def test_readyz_503_when_the_database_is_unreachable(unreachable: FastAPI) -> None:
    response = await call(unreachable, "GET", "/readyz")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable"}
    liveness = await call(unreachable, "GET", "/healthz")
    assert liveness.status_code == 200


async def test_security_headers_on_every_answer(client: httpx.AsyncClient) -> None:
    for response in (await client.get("/healthz"), await client.get("/api/v1/missing")):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert response.headers["x-frame-options"] == "DENY"
        assert "server" not in response.headers
        assert response.headers["x-request-id"]


async def test_api_answers_are_not_stored(
    client: httpx.AsyncClient, session: AsyncSession, state: AppState
) -> None:
    customer = await create_customer(session)
    user = await create_user(session, state, customer, role=Role.CUSTOMER_PORTAL_ADMIN)
    headers = await auth_headers(session, state, user)
    for path in ("/api/v1/me", "/api/v1/users", "/api/v1/missing"):
        response = await client.get(path, headers=headers)
        assert response.headers["cache-control"] == "no-store", path
    # The probes hold nothing personal; a cache may keep them.
    assert "cache-control" not in (await client.get("/healthz")).headers


async def test_no_cors_without_configured_origins(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in response.headers
    preflight = await client.options(
        "/api/v1/me",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
    )
    assert "access-control-allow-origin" not in preflight.headers


@pytest.fixture
def cors_app(settings: Settings, database: Database) -> FastAPI:
    configured = settings.model_copy(update={"cors_origins": ["https://portal.example.com"]})
    return create_app(configured, database, run_background=False)


async def test_cors_only_for_configured_origins(cors_app: FastAPI) -> None:
    allowed = await call(
        cors_app,
        "OPTIONS",
        "/api/v1/me",
        headers={
            "Origin": "https://portal.example.com",
            "Access-Control-Request-Method": "PATCH",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://portal.example.com"
    assert "PATCH" in allowed.headers["access-control-allow-methods"]

    simple = await call(
        cors_app, "GET", "/healthz", headers={"Origin": "https://portal.example.com"}
    )
    assert simple.headers["access-control-allow-origin"] == "https://portal.example.com"
    assert "x-request-id" in simple.headers["access-control-expose-headers"].lower()

    foreign = await call(
        cors_app,
        "OPTIONS",
        "/api/v1/me",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
    )
    assert foreign.status_code == 400
    assert foreign.headers["content-type"] == "application/problem+json"
    assert foreign.json()["code"] == "cors_rejected"
    assert "access-control-allow-origin" not in foreign.headers
    foreign_get = await call(
        cors_app, "GET", "/healthz", headers={"Origin": "https://evil.example"}
    )
    assert "access-control-allow-origin" not in foreign_get.headers
