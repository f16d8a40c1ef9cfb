"""SQLite's WAL checkpoints run in a thread of the serving process, not in a request's commit.

These use a SQLite file of their own, on either test database.
"""

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.checkpoints import INLINE_LIMIT, WalCheckpointer, checkpoint_periodically
from app.core.config import Settings
from app.core.db import create_engine, sqlite_connect_args


@pytest.fixture
def sqlite_file(tmp_path: Path) -> Path:
    return tmp_path / "wal.db"


def url_of(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


def size_of(path: Path) -> int:
    """The database file's size: it grows when a checkpoint copies new pages into it."""
    return path.stat().st_size


@pytest.fixture
async def service_engine(settings: Settings, sqlite_file: Path) -> AsyncIterator[AsyncEngine]:
    """The service's engine on the file. While it is open, its connection keeps the WAL
    (the last connection to close checkpoints it and removes it)."""
    engine = create_engine(settings.model_copy(update={"database_url": url_of(sqlite_file)}))
    yield engine
    await engine.dispose()


async def write_rows(engine: AsyncEngine, rows: int) -> None:
    """Commit `rows` rows of 1 KiB, 100 per transaction."""
    async with engine.begin() as connection:
        await connection.execute(text("CREATE TABLE IF NOT EXISTS filler (body TEXT)"))
    for _ in range(rows // 100):
        async with engine.begin() as connection:
            await connection.execute(
                text("INSERT INTO filler (body) VALUES (:body)"),
                [{"body": "x" * 1024} for _ in range(100)],
            )


async def test_the_service_checkpoints_in_a_commit_only_past_the_inline_limit(
    service_engine: AsyncEngine,
) -> None:
    async with service_engine.connect() as connection:
        limit = (await connection.execute(text("PRAGMA wal_autocheckpoint"))).scalar()
        mode = (await connection.execute(text("PRAGMA journal_mode"))).scalar()
    assert (limit, mode) == (INLINE_LIMIT, "wal")


async def test_a_checkpoint_copies_the_committed_pages_into_the_database_file(
    service_engine: AsyncEngine, sqlite_file: Path
) -> None:
    await write_rows(service_engine, 1_000)
    size_before = size_of(sqlite_file)
    checkpointer = WalCheckpointer(sqlite_connect_args(url_of(sqlite_file)))
    try:
        done = await checkpointer.checkpoint()
    finally:
        await checkpointer.close()
    assert done.busy == 0
    assert done.wal_pages > 250  # 1,000 rows of 1 KiB
    assert done.checkpointed == done.wal_pages
    assert size_of(sqlite_file) > size_before + 250 * 4096 // 2


async def test_a_checkpoint_does_not_wait_for_a_writer(
    service_engine: AsyncEngine, sqlite_file: Path
) -> None:
    await write_rows(service_engine, 500)
    writer = sqlite3.connect(sqlite_file, isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")  # holds the write lock throughout
        writer.execute("INSERT INTO filler (body) VALUES ('uncommitted')")
        checkpointer = WalCheckpointer(sqlite_connect_args(url_of(sqlite_file)))
        try:
            started = time.monotonic()
            done = await checkpointer.checkpoint()
            took = time.monotonic() - started
        finally:
            await checkpointer.close()
        writer.execute("ROLLBACK")
    finally:
        writer.close()
    # The committed pages are copied; the writer's transaction is neither waited for nor lost.
    assert done.checkpointed == done.wal_pages > 0
    assert took < 0.5


async def test_checkpoints_run_periodically_until_cancelled(
    service_engine: AsyncEngine, sqlite_file: Path
) -> None:
    await write_rows(service_engine, 1_000)
    size_before = size_of(sqlite_file)
    task = asyncio.create_task(
        checkpoint_periodically(sqlite_connect_args(url_of(sqlite_file)), interval=0.02)
    )
    for _ in range(250):  # up to 5 s
        await asyncio.sleep(0.02)
        if size_of(sqlite_file) > size_before:
            break
    grown = size_of(sqlite_file) > size_before
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert grown
