"""A database that cannot serve the request answers 503 problem+json, never 500; pooled
PostgreSQL connections that went away while idle are replaced before use."""

import asyncio
import sqlite3
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core import db
from app.core.config import Settings
from app.core.errors import PROBLEM_JSON
from app.main import create_app
from tests.conftest import TEST_DATABASE_URL, postgres_only


async def test_a_database_locked_past_the_busy_timeout_answers_503(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "locked.db"
    sqlite3.connect(path).close()
    monkeypatch.setattr(db, "SQLITE_BUSY_TIMEOUT", 0.1)
    app = create_app(
        settings.model_copy(update={"database_url": f"sqlite+aiosqlite:///{path}"}),
        run_background=False,
    )
    # Another process holds the write lock (the command line, a mail worker).
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            response = await client.post(
                "/api/v1/auth/login", json={"login": "someone", "password": "x" * 20}
            )
    finally:
        other.execute("ROLLBACK")
        other.close()
        await app.state.eservice.database.dispose()
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.headers["retry-after"] == "1"
    assert response.json()["code"] == "database_unavailable"


@postgres_only()
async def test_an_idle_connection_closed_by_the_server_is_replaced(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert TEST_DATABASE_URL is not None
    engine = db.create_engine(Settings(_env_file=None, database_url=TEST_DATABASE_URL))  # type: ignore[call-arg]
    try:
        async with engine.connect() as connection:
            pid = (await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        # The server (a restart, an idle timeout) ends the pooled connection.
        async with engine.connect() as connection:
            assert (await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one() == pid
        killer = db.create_engine(Settings(_env_file=None, database_url=TEST_DATABASE_URL))  # type: ignore[call-arg]
        async with killer.connect() as connection:
            await connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        await killer.dispose()
        monkeypatch.setattr(db, "PING_AFTER_IDLE", 0.0)
        async with engine.connect() as connection:
            fresh = (await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        assert fresh != pid
    finally:
        await engine.dispose()


@postgres_only()
@pytest.mark.committing
async def test_a_connection_lost_within_the_ping_interval_answers_503_once(
    settings: Settings, committing_engine: AsyncEngine
) -> None:
    """The app's own engine on the suite's database; its failed logins are cleaned up."""
    assert TEST_DATABASE_URL is not None
    app = create_app(
        settings.model_copy(update={"database_pool_size": 1}),
        run_background=False,
    )
    engine = app.state.eservice.database.bind
    try:
        async with engine.connect() as connection:
            pid = (await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        async with engine.connect() as connection:  # the second connection of the pool
            other_pid = (await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        killer = db.create_engine(Settings(_env_file=None, database_url=TEST_DATABASE_URL))  # type: ignore[call-arg]
        async with killer.connect() as connection:
            for backend in {pid, other_pid}:
                await connection.execute(text("SELECT pg_terminate_backend(:p)"), {"p": backend})
        await killer.dispose()
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            body = {"login": "nobody.here", "password": "x" * 20}
            first = await client.post("/api/v1/auth/login", json=body)
            assert first.status_code == 503, first.text
            assert first.json()["code"] == "database_unavailable"
            # The pool dropped the dead connections; the next request gets a fresh one.
            again = await client.post("/api/v1/auth/login", json=body)
            assert again.status_code == 401, again.text
    finally:
        await app.state.eservice.database.dispose()


@postgres_only()
async def test_requests_beyond_the_pool_wait_for_its_connections_instead_of_opening_more() -> None:
    """Under load every request reuses one of the pool's connections: none is opened for
    one request and closed after it."""
    assert TEST_DATABASE_URL is not None
    settings = Settings(_env_file=None, database_url=TEST_DATABASE_URL, database_pool_size=2)  # type: ignore[call-arg]
    engine = db.create_engine(settings)

    async def one_request() -> int:
        async with engine.connect() as connection:
            pid = (await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one()
            await connection.execute(text("SELECT pg_sleep(0.02)"))
            return int(pid)

    try:
        first = set(await asyncio.gather(*(one_request() for _ in range(8))))
        again = set(await asyncio.gather(*(one_request() for _ in range(8))))
    finally:
        await engine.dispose()
    assert len(first) <= 2
    assert again <= first


async def test_a_postgresql_server_that_cannot_be_reached_answers_503(
    settings: Settings,
) -> None:
    """asyncpg raises a refused connection as a plain OSError: it is answered as a database
    that cannot be reached, by direct statements and ORM sessions alike. (No server needed:
    nothing listens on the port.)"""
    unreachable = "postgresql+asyncpg://postgres@127.0.0.1:1/eservice"
    app = create_app(
        settings.model_copy(update={"database_url": unreachable}), run_background=False
    )
    database = app.state.eservice.database
    try:
        with pytest.raises(OperationalError):
            async with database.bind.connect():
                pass
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            login = await client.post(
                "/api/v1/auth/login", json={"login": "someone", "password": "x" * 20}
            )
            refresh = await client.post(
                "/api/v1/auth/refresh", json={"refresh_token": "0" * 32 + "." + "x" * 43}
            )
    finally:
        await database.dispose()
    for response in (login, refresh):
        assert response.status_code == 503, response.text
        assert response.headers["content-type"] == PROBLEM_JSON
        assert response.json()["code"] == "database_unavailable"
