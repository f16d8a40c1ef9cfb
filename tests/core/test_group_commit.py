"""Rows of concurrent requests written together (app/core/group_commit.py): each writer goes on
only once its row is committed, a bad row fails only its writer, a lost database fails them all."""

import asyncio
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.audit.models import AuditEvent
from app.audit.service import INSERT_EVENT, event_row
from app.core.config import Settings
from app.core.db import Database, create_engine
from app.core.group_commit import GroupCommit
from tests.conftest import TEST_DATABASE_URL
from tests.factories import create_customer, unique

NO_SUCH_CUSTOMER = 2_000_000_000


class CountedGroupCommit(GroupCommit):
    """A GroupCommit that records the size of each batch it writes."""

    def __init__(self, database: Database) -> None:
        super().__init__(database, INSERT_EVENT)
        self.batches: list[int] = []

    async def _write(self, connection: Any, batch: list[Any]) -> bool:
        self.batches.append(len(batch))
        return await super()._write(connection, batch)


@pytest.fixture
async def customer_id(session: AsyncSession) -> int:
    """A customer the events belong to, committed where the writer's connection sees it."""
    customer = await create_customer(session)
    await session.commit()
    return customer.id


def _row(customer_id: int, marker: str) -> dict[str, Any]:
    return event_row("test.grouped", customer_id=customer_id, target_id=marker)


async def _markers(session: AsyncSession) -> list[str | None]:
    rows = await session.execute(
        select(AuditEvent.target_id).where(AuditEvent.action == "test.grouped")
    )
    return sorted(rows.scalars())


async def test_rows_handed_over_together_are_written_in_one_batch(
    database: Database, session: AsyncSession, customer_id: int
) -> None:
    writer = CountedGroupCommit(database)
    markers = [unique("m") for _ in range(10)]
    await asyncio.gather(*(writer.write(_row(customer_id, marker)) for marker in markers))
    assert writer.batches == [10]
    assert await _markers(session) == sorted(markers)


async def test_rows_that_come_while_a_batch_is_written_are_the_next_batch(
    database: Database, session: AsyncSession, customer_id: int
) -> None:
    writer = CountedGroupCommit(database)
    first = asyncio.ensure_future(writer.write(_row(customer_id, "first")))
    await asyncio.sleep(0)  # the writer takes the first row
    later = [writer.write(_row(customer_id, f"later-{n}")) for n in range(3)]
    await asyncio.gather(first, *later)
    assert sum(writer.batches) == 4
    assert writer.batches[0] == 1
    assert len(await _markers(session)) == 4


async def test_a_bad_row_fails_only_its_writer(
    database: Database, session: AsyncSession, customer_id: int
) -> None:
    writer = CountedGroupCommit(database)
    results = await asyncio.gather(
        writer.write(_row(customer_id, "good-1")),
        writer.write(_row(NO_SUCH_CUSTOMER, "bad")),
        writer.write(_row(customer_id, "good-2")),
        return_exceptions=True,
    )
    assert results[0] is None
    assert results[2] is None
    assert isinstance(results[1], IntegrityError)
    # The batch of three failed as a whole; then each row alone.
    assert writer.batches == [3, 1, 1, 1]
    assert await _markers(session) == ["good-1", "good-2"]


async def test_an_insert_of_many_rows_is_atomic(
    database: Database, session: AsyncSession, customer_id: int
) -> None:
    async with database.direct() as connection:
        with pytest.raises(IntegrityError):
            await connection.insert_atomically(
                INSERT_EVENT, [_row(customer_id, "good"), _row(NO_SUCH_CUSTOMER, "bad")]
            )
        # The connection is still usable, and nothing of the failed insert was written.
        await connection.insert_atomically(INSERT_EVENT, [_row(customer_id, "after")])
    assert await _markers(session) == ["after"]


async def test_a_writer_that_stops_waiting_still_has_its_row_written(
    database: Database, session: AsyncSession, customer_id: int
) -> None:
    writer = GroupCommit(database, INSERT_EVENT)
    cancelled = asyncio.ensure_future(writer.write(_row(customer_id, "cancelled")))
    kept = asyncio.ensure_future(writer.write(_row(customer_id, "kept")))
    await asyncio.sleep(0)
    cancelled.cancel()
    await kept
    await writer.close()
    assert cancelled.cancelled()
    assert await _markers(session) == ["cancelled", "kept"]


@pytest.mark.committing
async def test_a_row_is_committed_when_its_write_returns(
    database: Database, committing_engine: AsyncEngine
) -> None:
    async with database.sessionmaker.begin() as session:
        customer = await create_customer(session)
    writer = GroupCommit(database, INSERT_EVENT)
    await asyncio.gather(*(writer.write(_row(customer.id, f"c-{n}")) for n in range(5)))
    # Another connection of the pool (on SQLite: after this one was given back) sees them.
    async with committing_engine.connect() as other:
        count = await other.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "test.grouped")
        )
    assert count == 5


async def test_an_unreachable_database_fails_every_writer_of_the_batch(tmp_path: Any) -> None:
    if TEST_DATABASE_URL:
        url = "postgresql+asyncpg://postgres@127.0.0.1:1/unreachable"
    else:
        # A folder where the database file should be: SQLite cannot open it.
        (tmp_path / "db").mkdir()
        url = f"sqlite+aiosqlite:///{tmp_path / 'db'}"
    database = Database(create_engine(Settings(_env_file=None, database_url=url)))  # type: ignore[call-arg]
    writer = CountedGroupCommit(database)
    try:
        results = await asyncio.gather(
            *(writer.write(_row(1, f"lost-{n}")) for n in range(3)), return_exceptions=True
        )
        assert all(isinstance(result, DBAPIError) for result in results), results
        # The writer is ready for the next rows once the database is back.
        assert writer._writer is None
        assert writer._pending == []
    finally:
        await database.dispose()
