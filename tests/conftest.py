"""Fixtures: a migrated database per test run, one rolled-back transaction per test.

SQLite by default; PostgreSQL when ESERVICE_TEST_DATABASE_URL is set (a fresh database is
created next to the one named there, and dropped afterwards).
"""

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from app.core.clock import clock
from app.core.config import Settings
from app.core.db import Database, create_engine
from app.core.migrate import alembic_config
from app.core.models import metadata
from app.core.state import AppState
from app.main import create_app

TEST_DATABASE_URL = os.environ.get("ESERVICE_TEST_DATABASE_URL")


def _admin_url(url: str) -> str:
    return make_url(url).set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)


async def _create_pg_database(url: str, name: str) -> None:
    engine = create_engine(Settings(database_url=_admin_url(url)))
    async with engine.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        await connection.execute(text(f'CREATE DATABASE "{name}"'))
    await engine.dispose()


async def _drop_pg_database(url: str, name: str) -> None:
    engine = create_engine(Settings(database_url=_admin_url(url)))
    async with engine.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    await engine.dispose()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A fresh, migrated database for this test run."""
    if TEST_DATABASE_URL:
        name = f"eservice_test_{secrets.token_hex(4)}"
        asyncio.run(_create_pg_database(TEST_DATABASE_URL, name))
        url = make_url(TEST_DATABASE_URL).set(database=name).render_as_string(hide_password=False)
    else:
        url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
    # Synchronous fixture, outside any running loop: alembic's env may call asyncio.run().
    command.upgrade(alembic_config(url), "head")
    yield url
    if TEST_DATABASE_URL:
        asyncio.run(_drop_pg_database(TEST_DATABASE_URL, make_url(url).database or ""))


@pytest.fixture
def empty_database_url(tmp_path: Path) -> Iterator[str]:
    """An empty database: a temp SQLite file, or a new PostgreSQL database beside the test one."""
    if not TEST_DATABASE_URL:
        yield f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
        return
    name = f"eservice_empty_{secrets.token_hex(4)}"
    asyncio.run(_create_pg_database(TEST_DATABASE_URL, name))
    try:
        yield make_url(TEST_DATABASE_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(_drop_pg_database(TEST_DATABASE_URL, name))


@pytest.fixture(scope="session")
def keys_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("keys")


@pytest.fixture
def settings(database_url: str, keys_dir: Path, tmp_path: Path) -> Settings:
    """Test settings: cheap hashing (the policy is the same), mail to files in tmp_path."""
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        environment="test",
        database_url=database_url,
        keys_dir=keys_dir,
        mail_dir=tmp_path / "mail",
        argon2_memory_cost=1024,
        argon2_time_cost=1,
        run_dispatcher=False,
        jwt_issuer="http://testserver",
        frontend_url="https://portal.example.com",
        portal_url="https://portal.example.com",
        pbx_ui_url="https://pbx.example.com",
    )


@pytest.fixture(scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(Settings(_env_file=None, database_url=database_url))  # type: ignore[call-arg]
    yield engine
    await engine.dispose()


@pytest.fixture
async def connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """One connection in a transaction that is rolled back after the test."""
    async with engine.connect() as connection:
        transaction = await connection.begin()
        yield connection
        if transaction.is_active:
            await transaction.rollback()


@pytest.fixture
def database(request: pytest.FixtureRequest) -> Database:
    """Rolled back after the test; `@pytest.mark.committing` tests get a real engine."""
    if request.node.get_closest_marker("committing"):
        return Database(request.getfixturevalue("committing_engine"))
    return Database(request.getfixturevalue("connection"))


@pytest.fixture
async def committing_engine(engine: AsyncEngine) -> AsyncIterator[AsyncEngine]:
    """For tests that need real commits (concurrency, dispatcher): empties the tables after."""
    yield engine
    async with engine.begin() as connection:
        for table in reversed(metadata.sorted_tables):
            await connection.execute(table.delete())


@pytest.fixture
async def session(database: Database) -> AsyncIterator[AsyncSession]:
    """A session for arranging and inspecting data; flushes are visible to the app."""
    async with database.sessionmaker() as session:
        yield session
        await session.commit()


@pytest.fixture
def app(settings: Settings, database: Database):  # type: ignore[no-untyped-def]
    return create_app(settings, database, run_background=False)


@pytest.fixture
def state(app) -> AppState:  # type: ignore[no-untyped-def]
    app_state: AppState = app.state.eservice
    return app_state


@pytest.fixture
async def client(app) -> AsyncIterator[httpx.AsyncClient]:  # type: ignore[no-untyped-def]
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


@pytest.fixture(autouse=True)
def _reset_clock() -> Iterator[None]:
    yield
    clock.reset()


ON_POSTGRES = (TEST_DATABASE_URL or "").startswith("postgresql")


def postgres_only() -> pytest.MarkDecorator:
    return pytest.mark.skipif(
        not ON_POSTGRES, reason="needs PostgreSQL (set ESERVICE_TEST_DATABASE_URL)"
    )


def sqlite_only(reason: str) -> pytest.MarkDecorator:
    """For behaviour of the embedded database only; `reason` says why PostgreSQL differs."""
    return pytest.mark.skipif(ON_POSTGRES, reason=reason)
