"""The inline SQLite driver: statements on the loop's thread, lock waits that do not block."""

import asyncio
import sqlite3
import time
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from app.core.config import Settings
from app.core.db import create_engine
from app.core.sqlite_driver import InlineConnection, inline_connector


def _engine(path: Path):  # type: ignore[no-untyped-def]
    return create_engine(Settings(_env_file=None, database_url=f"sqlite+aiosqlite:///{path}"))  # type: ignore[call-arg]


async def test_statements_cursors_and_transactions_work(tmp_path: Path) -> None:
    engine = _engine(tmp_path / "db.sqlite")
    try:
        async with engine.begin() as connection:
            await connection.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"))
            result = await connection.execute(text("INSERT INTO t (v) VALUES ('a')"))
            assert result.lastrowid == 1
            rows = [{"v": "b"}, {"v": "c"}]
            await connection.execute(text("INSERT INTO t (v) VALUES (:v)"), rows)
        async with engine.begin() as connection:
            await connection.execute(text("UPDATE t SET v = 'z' WHERE id > 1"))
            await connection.rollback()
        async with engine.connect() as connection:
            rows = (await connection.execute(text("SELECT v FROM t ORDER BY id"))).scalars().all()
            assert rows == ["a", "b", "c"]
            journal = (await connection.execute(text("PRAGMA journal_mode"))).scalar_one()
            assert journal == "wal"
            assert (await connection.execute(text("PRAGMA foreign_keys"))).scalar_one() == 1
    finally:
        await engine.dispose()


async def test_a_lock_held_by_another_process_is_waited_for_without_blocking_the_loop(
    tmp_path: Path,
) -> None:
    path = tmp_path / "db.sqlite"
    engine = _engine(path)
    try:
        async with engine.begin() as connection:
            await connection.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY)"))
        # Another writer (the CLI, a mail worker) holds the write lock for a while.
        other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        other.execute("BEGIN IMMEDIATE")
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        async def write() -> None:
            async with engine.begin() as connection:
                await connection.execute(text("INSERT INTO t (id) VALUES (1)"))

        ticker = asyncio.create_task(tick())
        writer = asyncio.create_task(write())
        await asyncio.sleep(0.3)
        assert not writer.done()  # still waiting for the lock ...
        assert ticks >= 10  # ... while the event loop goes on
        other.execute("COMMIT")
        other.close()
        await asyncio.wait_for(writer, 5)
        ticker.cancel()
        async with engine.connect() as connection:
            assert (await connection.execute(text("SELECT count(*) FROM t"))).scalar_one() == 1
    finally:
        await engine.dispose()


async def test_the_wait_for_a_lock_ends_with_an_error(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    sqlite3.connect(path).close()
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        connect = inline_connector(([str(path)], {}), busy_timeout=0.2)
        connection: InlineConnection = await connect()
        started = time.monotonic()
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            await connection.execute("BEGIN IMMEDIATE")
        assert 0.2 <= time.monotonic() - started < 2
        await connection.close()
    finally:
        other.execute("ROLLBACK")
        other.close()


async def test_errors_other_than_a_lock_are_not_retried(tmp_path: Path) -> None:
    engine = _engine(tmp_path / "db.sqlite")
    try:
        async with engine.connect() as connection:
            started = time.monotonic()
            with pytest.raises(OperationalError, match="no such table"):
                await connection.execute(text("SELECT * FROM missing"))
            assert time.monotonic() - started < 0.1
    finally:
        await engine.dispose()
