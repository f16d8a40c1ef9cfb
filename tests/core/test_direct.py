"""Prepared statements on the driver's own connection (app/core/direct.py): values come and go
as through SQLAlchemy, errors are SQLAlchemy's, and `Database.transaction()` begins at its first
statement and ends as the request's unit of work does."""

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import asyncpg
import httpx
import pytest
from fastapi import Request
from sqlalchemy import (
    Column,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    func,
    insert,
    literal_column,
    or_,
    select,
    text,
)
from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg
from sqlalchemy.dialects.sqlite.aiosqlite import SQLiteDialect_aiosqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.audit.models import AuditEvent
from app.audit.service import EVENTS, INSERT_EVENT, event_row, record_event
from app.auth.sessions import CachedAuthenticator
from app.contracts.models import Contract, ContractState
from app.core import db
from app.core.config import Settings
from app.core.db import Database
from app.core.direct import PostgresConnection, Prepared
from app.core.errors import PROBLEM_JSON, AppError, error_for_integrity_error
from app.core.permissions import Role
from app.customers.errors import CustomerNumberTaken
from app.customers.models import Customer, EServiceState
from app.main import create_app
from tests.conftest import TEST_DATABASE_URL, postgres_only, sqlite_only
from tests.factories import (
    auth_headers,
    create_contract,
    create_customer,
    create_user,
    unique,
)

CONTRACTS = cast(Table, Contract.__table__)
CUSTOMERS = cast(Table, Customer.__table__)

MICROSECONDS = datetime(2024, 5, 6, 7, 8, 9, 123457, tzinfo=UTC)
WHOLE_SECOND = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
# 09:08:09.000001 at UTC+2 is 07:08:09.000001 UTC.
OTHER_OFFSET = datetime(2024, 5, 6, 9, 8, 9, 1, tzinfo=timezone(timedelta(hours=2)))
TIMESTAMPS = pytest.mark.parametrize(
    "at", [MICROSECONDS, WHOLE_SECOND, OTHER_OFFSET], ids=["microseconds", "whole", "utc+2"]
)

DETAILS = {
    "contract_number": "V-4711",
    "text": "Grüße, \"quoted\" and 'single'",
    "nested": {"list": [1, 2.5, None, True, "x"], "empty": {}},
}

_EVENT_OF_CUSTOMER = Prepared(
    select(
        EVENTS.c.at,
        EVENTS.c.details,
        EVENTS.c.target_id,
        EVENTS.c.client_ip,
        EVENTS.c.actor_id,
        EVENTS.c.action,
    )
    .where(EVENTS.c.customer_id == bindparam("customer_id"))
    .order_by(EVENTS.c.id)
)
_CONTRACT = Prepared(
    select(
        CONTRACTS.c.state,
        CONTRACTS.c.created_at,
        CONTRACTS.c.pbx_tenant,
        CONTRACTS.c.pbx_ui_url,
        CONTRACTS.c.contract_number,
    ).where(CONTRACTS.c.id == bindparam("id"))
)
_COUNT_OF_ACTION = Prepared(
    select(func.count()).select_from(EVENTS).where(EVENTS.c.action == bindparam("action"))
)
_ANSWER = Prepared(select(bindparam("n", type_=Integer).label("n")))
_INSERT_CUSTOMER = Prepared(
    insert(CUSTOMERS).values(
        customer_number=bindparam("number"),
        name=bindparam("name"),
        eservice_state=bindparam("state"),
        activation_code_hash=bindparam("code"),
        activated_at=bindparam("at"),
        created_at=bindparam("at"),
        updated_at=bindparam("at"),
    )
)
DIALECTS = pytest.mark.parametrize(
    "dialect", [SQLiteDialect_aiosqlite(), PGDialect_asyncpg()], ids=["sqlite", "postgresql"]
)


def _event(action: str, customer_id: int | None = None, **values: Any) -> dict[str, Any]:
    return {**event_row(action, customer_id=customer_id), **values}


async def _count(engine: AsyncEngine, action: str) -> int:
    """Events of `action`, seen from a connection of the engine's own (what is committed)."""
    async with engine.connect() as connection:
        query = select(func.count()).select_from(EVENTS).where(EVENTS.c.action == action)
        return int((await connection.execute(query)).scalar_one())


# --- Values round-trip exactly as through SQLAlchemy -------------------------------------------


@TIMESTAMPS
async def test_a_timestamp_written_directly_reads_back_through_the_orm_as_the_same_utc_time(
    database: Database, session: AsyncSession, at: datetime
) -> None:
    customer = await create_customer(session)
    async with database.transaction() as connection:
        await connection.run(INSERT_EVENT, _event("direct.at", customer.id, at=at))
    event = (
        await session.execute(select(AuditEvent).where(AuditEvent.customer_id == customer.id))
    ).scalar_one()
    assert event.at == at
    assert event.at.utcoffset() == timedelta(0)
    assert event.at.microsecond == at.microsecond


async def test_json_details_and_a_text_target_written_directly_read_back_through_the_orm(
    database: Database, session: AsyncSession
) -> None:
    customer = await create_customer(session)
    row = event_row(
        "direct.details",
        customer_id=customer.id,
        target_type="contract",
        target_id=4711,
        details=DETAILS,
    )
    async with database.transaction() as connection:
        await connection.run(INSERT_EVENT, row)
    event = (
        await session.execute(select(AuditEvent).where(AuditEvent.customer_id == customer.id))
    ).scalar_one()
    assert event.details == DETAILS
    assert event.target_id == "4711"
    assert event.target_type == "contract"
    assert event.client_ip is None
    assert event.actor_login == "system"


@TIMESTAMPS
async def test_a_prepared_select_returns_timestamps_as_the_aware_utc_time_written(
    database: Database, session: AsyncSession, at: datetime
) -> None:
    customer = await create_customer(session)
    session.add(AuditEvent(customer_id=customer.id, action="orm.at", at=at, details={}))
    await session.flush()
    async with database.direct() as connection:
        [row] = await connection.all(_EVENT_OF_CUSTOMER, {"customer_id": customer.id})
    assert row[0] == at
    assert row[0].tzinfo is not None
    assert row[0].utcoffset() == timedelta(0)
    assert row[0].microsecond == at.microsecond


async def test_a_prepared_select_returns_an_enum_member_and_nulls_as_none(
    database: Database, session: AsyncSession
) -> None:
    customer = await create_customer(session)
    contract = await create_contract(
        session, customer, state=ContractState.TERMINATED, pbx_tenant=None, pbx_ui_url=None
    )
    async with database.direct() as connection:
        [row] = await connection.all(_CONTRACT, {"id": contract.id})
    state, created_at, pbx_tenant, pbx_ui_url, number = row
    assert state is ContractState.TERMINATED
    assert pbx_tenant is None
    assert pbx_ui_url is None
    assert number == contract.contract_number
    assert created_at == contract.created_at
    assert created_at.utcoffset() == timedelta(0)


async def test_a_prepared_select_returns_the_rows_sqlalchemy_returns(
    database: Database, session: AsyncSession
) -> None:
    customer = await create_customer(session)
    session.add_all(
        [
            AuditEvent(
                customer_id=customer.id,
                action="orm.one",
                at=MICROSECONDS,
                target_id="7",
                details=DETAILS,
            ),
            AuditEvent(
                customer_id=customer.id,
                action="orm.two",
                at=WHOLE_SECOND,
                actor_id=3,
                client_ip="2001:db8::1",
                details={},
            ),
        ]
    )
    await session.flush()
    values = {"customer_id": customer.id}
    through_sqlalchemy = [
        tuple(row) for row in await session.execute(_EVENT_OF_CUSTOMER.statement, values)
    ]
    async with database.direct() as connection:
        direct = await connection.all(_EVENT_OF_CUSTOMER, values)
    assert direct == through_sqlalchemy
    assert [type(value) for value in direct[0]] == [type(v) for v in through_sqlalchemy[0]]


async def test_an_enum_and_a_timestamp_are_stored_as_sqlalchemy_stores_them(
    database: Database, session: AsyncSession
) -> None:
    """Bind processors: the same values, once through the ORM and once directly, are stored
    alike (an enum member as its value, an aware time as UTC, None as NULL)."""
    through_orm = Customer(
        customer_number=unique("O"),
        name="Direkt AG",
        eservice_state=EServiceState.ACTIVE,
        activated_at=OTHER_OFFSET,
        created_at=OTHER_OFFSET,
        updated_at=OTHER_OFFSET,
    )
    session.add(through_orm)
    await session.flush()
    number = unique("D")
    values = {
        "number": number,
        "name": "Direkt AG",
        "state": EServiceState.ACTIVE,
        "code": None,
        "at": OTHER_OFFSET,
    }
    async with database.transaction() as connection:
        await connection.run(_INSERT_CUSTOMER, values)
    stored = text(
        "SELECT eservice_state, activation_code_hash, activated_at, created_at"
        " FROM customers WHERE customer_number = :number"
    )
    orm_row = (await session.execute(stored, {"number": through_orm.customer_number})).one()
    direct_row = (await session.execute(stored, {"number": number})).one()
    assert tuple(direct_row) == tuple(orm_row)
    assert direct_row[0] == "active"


# --- Compilation -------------------------------------------------------------------------------


@DIALECTS
def test_an_expanding_bind_parameter_is_refused_when_compiled(dialect: Dialect) -> None:
    prepared = Prepared(
        select(CONTRACTS.c.id).where(CONTRACTS.c.id.in_(bindparam("ids", expanding=True)))
    )
    with pytest.raises(TypeError, match="ids"):
        prepared.compiled(dialect)


async def test_a_bind_name_used_twice_gets_its_value_in_both_places(database: Database) -> None:
    """x * 10 + y * 100 + x, with another name between the two uses of x."""
    x, y = bindparam("x", type_=Integer), bindparam("y", type_=Integer)
    prepared = Prepared(select((x * 10 + y * 100 + x).label("sum")))
    async with database.direct() as connection:
        assert await connection.all(prepared, {"x": 4, "y": 7}) == [(744,)]


async def test_a_bind_name_used_twice_in_a_where_clause_filters_by_both_columns(
    database: Database, session: AsyncSession
) -> None:
    customer = await create_customer(session)
    name = unique("N")
    by_number = await create_contract(session, customer, number=name, pbx_tenant="other")
    by_tenant = await create_contract(session, customer, pbx_tenant=name)
    await create_contract(session, customer, pbx_tenant="neither")
    await create_contract(session, await create_customer(session), pbx_tenant=name)
    prepared = Prepared(
        select(CONTRACTS.c.id)
        .where(
            CONTRACTS.c.customer_id == bindparam("customer_id"),
            or_(
                CONTRACTS.c.contract_number == bindparam("name"),
                CONTRACTS.c.pbx_tenant == bindparam("name"),
            ),
        )
        .order_by(CONTRACTS.c.id)
    )
    async with database.direct() as connection:
        rows = await connection.all(prepared, {"customer_id": customer.id, "name": name})
    assert rows == [(by_number.id,), (by_tenant.id,)]


# --- In an ORM session's transaction (direct_in) ------------------------------------------------


@pytest.mark.committing
async def test_a_direct_statement_as_a_sessions_first_rolls_back_with_the_session(
    database: Database, committing_engine: AsyncEngine
) -> None:
    """No statement through SQLAlchemy before it: it is still inside the session's
    transaction (on asyncpg, whose BEGIN SQLAlchemy sends with its first statement)."""
    async with database.sessionmaker() as session:
        await record_event(session, "in.session.rolled_back", customer_id=None)
        await session.rollback()
    assert await _count(committing_engine, "in.session.rolled_back") == 0


@pytest.mark.committing
async def test_after_a_commit_direct_statements_run_in_the_sessions_next_transaction(
    database: Database, committing_engine: AsyncEngine
) -> None:
    async with database.sessionmaker() as session:
        await record_event(session, "in.session.committed", customer_id=None)
        await session.commit()
        await record_event(session, "in.session.after_commit", customer_id=None)
        await session.rollback()
    assert await _count(committing_engine, "in.session.committed") == 1
    assert await _count(committing_engine, "in.session.after_commit") == 0


# --- Transactions --------------------------------------------------------------------------------


class _RefusedButRecorded(AppError):
    status, code, title = 401, "refused", "Refused"


async def _write_then(database: Database, *events: dict[str, Any], error: Exception) -> None:
    """A transaction that writes `events`, then fails with `error`."""
    async with database.transaction() as connection:
        for event in events:
            await connection.run(INSERT_EVENT, event)
        raise error


@pytest.mark.committing
async def test_a_transaction_whose_block_ends_normally_commits(
    database: Database, committing_engine: AsyncEngine
) -> None:
    async with database.transaction() as connection:
        await connection.run(INSERT_EVENT, _event("tx.committed"))
        await connection.run(INSERT_EVENT, _event("tx.committed"))
    assert await _count(committing_engine, "tx.committed") == 2


@pytest.mark.committing
async def test_an_exception_in_a_transaction_rolls_it_back_and_propagates(
    database: Database, committing_engine: AsyncEngine
) -> None:
    with pytest.raises(LookupError, match="in the block"):
        await _write_then(database, _event("tx.rolled_back"), error=LookupError("in the block"))
    assert await _count(committing_engine, "tx.rolled_back") == 0


@pytest.mark.committing
async def test_an_app_error_that_keeps_changes_commits_and_propagates(
    database: Database, committing_engine: AsyncEngine
) -> None:
    error = _RefusedButRecorded("refused", keep_changes=True)
    with pytest.raises(_RefusedButRecorded):
        await _write_then(database, _event("tx.kept"), error=error)
    assert await _count(committing_engine, "tx.kept") == 1


@pytest.mark.committing
async def test_an_app_error_without_keep_changes_rolls_back(
    database: Database, committing_engine: AsyncEngine
) -> None:
    with pytest.raises(_RefusedButRecorded):
        await _write_then(database, _event("tx.not_kept"), error=_RefusedButRecorded("refused"))
    assert await _count(committing_engine, "tx.not_kept") == 0


@pytest.mark.committing
async def test_a_transaction_ended_early_gives_its_connection_back_and_can_begin_again(
    database: Database, committing_engine: AsyncEngine
) -> None:
    async def write_in_a_session() -> None:
        async with database.sessionmaker() as session:
            await record_event(session, "tx.between", customer_id=None)
            await session.commit()

    async with database.transaction() as connection:
        await connection.run(INSERT_EVENT, _event("tx.ended_early"))
        await connection.end(commit=False)
        # On SQLite the pool's one connection: the session would wait for it otherwise.
        await asyncio.wait_for(write_in_a_session(), timeout=5)
        await connection.run(INSERT_EVENT, _event("tx.begun_again"))
    assert await _count(committing_engine, "tx.ended_early") == 0
    assert await _count(committing_engine, "tx.between") == 1
    assert await _count(committing_engine, "tx.begun_again") == 1


@pytest.mark.parametrize("commit", [True, False], ids=["committed", "rolled-back"])
async def test_what_waits_for_a_transactions_commit_runs_only_once_it_is_committed(
    database: Database, commit: bool
) -> None:
    ran: list[str] = []
    async with database.transaction() as connection:
        await connection.run(INSERT_EVENT, _event("tx.callback"))
        connection.after_commit(lambda: ran.append("after"))
        assert ran == []
        await connection.end(commit=commit)
    assert ran == (["after"] if commit else [])


class _RequestOf:
    """What the unit-of-work dependencies read of a request: the app's database."""

    def __init__(self, database: Database) -> None:
        self.app = SimpleNamespace(
            state=SimpleNamespace(eservice=SimpleNamespace(database=database))
        )


async def _unit_writes(
    database: Database,
    event: dict[str, Any],
    *,
    in_session: bool = False,
    error: Exception | None = None,
) -> None:
    """A request's `DbUnit` that writes `event` in one of its forms, then fails with `error`."""
    unit_of_request = asynccontextmanager(db.get_unit)(cast(Request, _RequestOf(database)))
    async with unit_of_request as unit:
        if in_session:
            await record_event(unit.session, event["action"], customer_id=None)
        else:
            await unit.queries.run(INSERT_EVENT, event)
        if error is not None:
            raise error


@pytest.mark.committing
@pytest.mark.parametrize("in_session", [False, True], ids=["direct", "session"])
async def test_a_unit_of_work_commits_what_either_form_wrote(
    database: Database, committing_engine: AsyncEngine, in_session: bool
) -> None:
    await _unit_writes(database, _event("unit.committed"), in_session=in_session)
    assert await _count(committing_engine, "unit.committed") == 1


@pytest.mark.committing
@pytest.mark.parametrize("in_session", [False, True], ids=["direct", "session"])
@pytest.mark.parametrize(
    ("error", "kept"),
    [(LookupError("in the block"), 0), (_RefusedButRecorded("refused", keep_changes=True), 1)],
    ids=["error", "keeps-changes"],
)
async def test_a_unit_of_work_ends_either_form_on_an_error_as_keeps_changes_says(
    database: Database,
    committing_engine: AsyncEngine,
    in_session: bool,
    error: Exception,
    kept: int,
) -> None:
    with pytest.raises(type(error)):
        await _unit_writes(database, _event("unit.failed"), in_session=in_session, error=error)
    assert await _count(committing_engine, "unit.failed") == kept


@postgres_only()
@pytest.mark.committing
async def test_a_unit_of_work_whose_direct_statement_wrote_nothing_writes_in_the_session(
    database: Database, committing_engine: AsyncEngine
) -> None:
    # A login whose account changed during the hash: its statement matches no row, and the
    # refusal is written in the session.
    nothing = Prepared(EVENTS.update().where(EVENTS.c.id == bindparam("id")).values(action="never"))
    unit_of_request = asynccontextmanager(db.get_unit)(cast(Request, _RequestOf(database)))
    async with unit_of_request as unit:
        await unit.queries.run(nothing, {"id": -1})
        await record_event(unit.session, "unit.refused", customer_id=None)
    assert await _count(committing_engine, "unit.refused") == 1
    assert await _count(committing_engine, "never") == 0


@pytest.mark.committing
async def test_a_transaction_that_runs_no_statement_takes_no_connection(
    database: Database, committing_engine: AsyncEngine
) -> None:
    pool = cast(Any, committing_engine.pool)
    async with database.transaction():
        assert pool.checkedout() == 0
    assert pool.checkedout() == 0


@pytest.mark.committing
async def test_a_transaction_holds_one_connection_and_gives_it_back_when_it_ends(
    database: Database, committing_engine: AsyncEngine
) -> None:
    pool = cast(Any, committing_engine.pool)
    async with database.transaction() as connection:
        await connection.run(INSERT_EVENT, _event("tx.pool"))
        await connection.run(INSERT_EVENT, _event("tx.pool"))
        assert pool.checkedout() == 1
    assert pool.checkedout() == 0


@pytest.mark.committing
async def test_a_transaction_that_fails_gives_its_connection_back(
    database: Database, committing_engine: AsyncEngine
) -> None:
    with pytest.raises(LookupError):
        await _write_then(database, _event("tx.pool"), error=LookupError())
    assert cast(Any, committing_engine.pool).checkedout() == 0


@pytest.mark.committing
async def test_a_failed_statement_rolls_back_the_earlier_ones_of_its_transaction(
    database: Database, committing_engine: AsyncEngine
) -> None:
    async def write_two() -> None:
        async with database.transaction() as connection:
            await connection.run(INSERT_EVENT, _event("tx.atomic"))
            await connection.run(INSERT_EVENT, _event("tx.atomic", customer_id=2**31 - 1))

    with pytest.raises(IntegrityError):
        await write_two()
    assert await _count(committing_engine, "tx.atomic") == 0


@pytest.mark.committing
async def test_a_transaction_on_a_tests_fresh_connection_nests_in_the_tests_transaction(
    committing_engine: AsyncEngine,
) -> None:
    """A test's connection on which nothing ran yet: `transaction()` takes a savepoint in the
    test's transaction, and the test's rollback undoes it."""
    async with committing_engine.connect() as outer:
        transaction = await outer.begin()
        async with Database(outer).transaction() as connection:
            await connection.run(INSERT_EVENT, _event("tx.nested"))
            assert await connection.all(_COUNT_OF_ACTION, {"action": "tx.nested"}) == [(1,)]
        await transaction.rollback()
    assert await _count(committing_engine, "tx.nested") == 0


@pytest.mark.committing
async def test_a_statement_on_a_tests_fresh_connection_is_rolled_back_with_the_test(
    committing_engine: AsyncEngine,
) -> None:
    """`direct()` on a test's connection on which nothing ran yet is inside its transaction."""
    async with committing_engine.connect() as outer:
        transaction = await outer.begin()
        async with Database(outer).direct() as connection:
            await connection.run(INSERT_EVENT, _event("direct.nested"))
        await transaction.rollback()
    assert await _count(committing_engine, "direct.nested") == 0


# --- Errors are SQLAlchemy's ---------------------------------------------------------------------


async def test_a_foreign_key_violation_raises_sqlalchemys_integrity_error(
    database: Database, session: AsyncSession
) -> None:
    """An event of a customer that does not exist; the database works on afterwards."""
    missing = (await create_customer(session)).id + 1000
    with pytest.raises(IntegrityError) as caught:
        async with database.transaction() as connection:
            await connection.run(INSERT_EVENT, _event("fk.missing", customer_id=missing))
    assert isinstance(caught.value.orig, sqlite3.IntegrityError | asyncpg.PostgresError)
    async with database.direct() as connection:
        assert await connection.all(_ANSWER, {"n": 42}) == [(42,)]


async def test_a_unique_violation_is_answered_as_the_registered_client_error(
    database: Database, session: AsyncSession
) -> None:
    customer = await create_customer(session)
    values = {
        "number": customer.customer_number,
        "name": "Doppelt GmbH",
        "state": EServiceState.PENDING,
        "code": None,
        "at": MICROSECONDS,
    }
    with pytest.raises(IntegrityError) as caught:
        async with database.transaction() as connection:
            await connection.run(_INSERT_CUSTOMER, values)
    assert isinstance(error_for_integrity_error(caught.value), CustomerNumberTaken)


@pytest.mark.committing
async def test_after_a_not_null_violation_the_same_database_still_works(
    database: Database, committing_engine: AsyncEngine
) -> None:
    """Outside a transaction each statement is its own; the pooled connection stays usable."""
    with pytest.raises(IntegrityError):
        async with database.direct() as connection:
            await connection.run(INSERT_EVENT, {**_event("ignored"), "action": None})
    async with database.direct() as connection:
        await connection.run(INSERT_EVENT, _event("after.not_null"))
        assert await connection.all(_ANSWER, {"n": 7}) == [(7,)]
    assert await _count(committing_engine, "after.not_null") == 1
    assert cast(Any, committing_engine.pool).checkedout() == 0


# --- SQLite: another process's write lock --------------------------------------------------------

_ITEMS_METADATA = MetaData()
_ITEMS = Table(
    "items",
    _ITEMS_METADATA,
    Column("id", Integer, primary_key=True),
    Column("name", String(20), nullable=False),
)
_INSERT_ITEM = Prepared(insert(_ITEMS).values(name=bindparam("name")))
_ITEM_NAMES = Prepared(select(_ITEMS.c.name).order_by(_ITEMS.c.id))


async def _file_database(path: Path) -> Database:
    engine = db.create_engine(
        Settings(_env_file=None, database_url=f"sqlite+aiosqlite:///{path}")  # type: ignore[call-arg]
    )
    async with engine.begin() as connection:
        await connection.run_sync(_ITEMS_METADATA.create_all)
    return Database(engine)


@pytest.fixture
async def locked_file(tmp_path: Path) -> AsyncIterator[tuple[Path, sqlite3.Connection]]:
    """A SQLite file and another process's connection to it (which the test locks)."""
    path = tmp_path / "direct.db"
    await (await _file_database(path)).dispose()
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        yield path, other
    finally:
        if other.in_transaction:
            other.execute("ROLLBACK")
        other.close()


@sqlite_only("PostgreSQL has row locks and no process-wide write lock")
async def test_a_transaction_waits_for_another_process_s_write_lock(
    locked_file: tuple[Path, sqlite3.Connection],
) -> None:
    path, other = locked_file
    database = await _file_database(path)
    other.execute("BEGIN IMMEDIATE")

    async def release() -> None:
        await asyncio.sleep(0.05)
        other.execute("COMMIT")

    releasing = asyncio.create_task(release())
    try:
        started = time.monotonic()
        async with database.transaction() as connection:
            await connection.run(_INSERT_ITEM, {"name": "after the wait"})
        waited = time.monotonic() - started
        await releasing
        async with database.direct() as connection:
            assert await connection.all(_ITEM_NAMES, {}) == [("after the wait",)]
    finally:
        await database.dispose()
    assert waited >= 0.04


@sqlite_only("PostgreSQL has row locks and no process-wide write lock")
async def test_a_write_lock_held_past_the_busy_timeout_raises_operational_error(
    locked_file: tuple[Path, sqlite3.Connection], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, other = locked_file
    monkeypatch.setattr(db, "SQLITE_BUSY_TIMEOUT", 0.1)
    database = await _file_database(path)
    other.execute("BEGIN IMMEDIATE")
    try:
        started = time.monotonic()
        with pytest.raises(OperationalError, match="locked"):
            async with database.transaction() as connection:
                await connection.run(_INSERT_ITEM, {"name": "never"})
        assert time.monotonic() - started < 1.0
    finally:
        await database.dispose()


@sqlite_only("PostgreSQL has row locks and no process-wide write lock")
async def test_after_a_lock_timeout_the_next_transaction_succeeds(
    locked_file: tuple[Path, sqlite3.Connection], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, other = locked_file
    monkeypatch.setattr(db, "SQLITE_BUSY_TIMEOUT", 0.05)
    database = await _file_database(path)
    try:
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(OperationalError):
            async with database.transaction() as connection:
                await connection.run(_INSERT_ITEM, {"name": "never"})
        other.execute("ROLLBACK")
        async with database.transaction() as connection:
            await connection.run(_INSERT_ITEM, {"name": "next"})
        async with database.direct() as connection:
            assert await connection.all(_ITEM_NAMES, {}) == [("next",)]
    finally:
        await database.dispose()


@sqlite_only("PostgreSQL has row locks and no process-wide write lock")
async def test_a_transaction_cancelled_while_it_waits_for_the_lock_leaves_the_database_usable(
    locked_file: tuple[Path, sqlite3.Connection],
) -> None:
    path, other = locked_file
    database = await _file_database(path)
    try:
        other.execute("BEGIN IMMEDIATE")

        async def write() -> None:
            async with database.transaction() as connection:
                await connection.run(_INSERT_ITEM, {"name": "cancelled"})

        with pytest.raises(TimeoutError):
            await asyncio.wait_for(write(), 0.05)
        other.execute("ROLLBACK")
        async with database.transaction() as connection:
            await connection.run(_INSERT_ITEM, {"name": "next"})
        async with database.direct() as connection:
            assert await connection.all(_ITEM_NAMES, {}) == [("next",)]
    finally:
        await database.dispose()


# --- PostgreSQL: lost and cancelled connections --------------------------------------------------

_BACKEND_PID = Prepared(select(func.pg_backend_pid()))
_SLEEP = Prepared(select(func.pg_sleep(bindparam("seconds", type_=Float))))


async def _terminate(*pids: int) -> None:
    """End the backends from another connection, and wait until they are gone."""
    assert TEST_DATABASE_URL is not None
    killer = db.create_engine(Settings(_env_file=None, database_url=TEST_DATABASE_URL))  # type: ignore[call-arg]
    try:
        async with killer.connect() as connection:
            for pid in pids:
                await connection.execute(
                    text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid}
                )
    finally:
        await killer.dispose()


async def _pid(database: Database) -> int:
    async with database.direct() as connection:
        [(pid,)] = await connection.all(_BACKEND_PID, {})
    return int(pid)


@pytest.fixture
async def one_connection(settings: Settings) -> AsyncIterator[Database]:
    """A database whose pool holds a single connection."""
    database = Database(db.create_engine(settings.model_copy(update={"database_pool_size": 1})))
    try:
        yield database
    finally:
        await database.dispose()


@postgres_only()
async def test_a_terminated_backend_raises_an_invalidated_operational_error(
    one_connection: Database,
) -> None:
    await _terminate(await _pid(one_connection))
    with pytest.raises(OperationalError) as caught:
        async with one_connection.direct() as connection:
            await connection.all(_BACKEND_PID, {})
    assert caught.value.connection_invalidated


@postgres_only()
async def test_after_a_terminated_backend_the_next_statement_runs_on_a_fresh_one(
    one_connection: Database,
) -> None:
    pid = await _pid(one_connection)
    await _terminate(pid)
    with pytest.raises(OperationalError):
        await _pid(one_connection)
    assert await _pid(one_connection) != pid


async def _answers_at_once(database: Database) -> None:
    """The next statement answers correctly, without waiting for anything left running."""
    started = time.monotonic()
    async with database.direct() as connection:
        assert await connection.all(_ANSWER, {"n": 42}) == [(42,)]
    assert time.monotonic() - started < 0.5


@postgres_only()
async def test_a_statement_cancelled_half_way_leaves_no_broken_connection_in_the_pool(
    one_connection: Database,
) -> None:
    async def sleep() -> None:
        async with one_connection.direct() as connection:
            await connection.all(_SLEEP, {"seconds": 1.0})

    with pytest.raises(TimeoutError):
        await asyncio.wait_for(sleep(), 0.05)
    await _answers_at_once(one_connection)


@postgres_only()
async def test_a_transaction_cancelled_half_way_is_cancelled_and_leaves_the_pool_usable(
    one_connection: Database,
) -> None:
    async def sleep_in_a_transaction() -> None:
        async with one_connection.transaction() as connection:
            await connection.all(_SLEEP, {"seconds": 1.0})

    task = asyncio.create_task(sleep_in_a_transaction())
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await _answers_at_once(one_connection)


@postgres_only()
async def test_a_connection_whose_statement_was_cancelled_is_discarded_by_the_pool(
    one_connection: Database,
) -> None:
    """It is in an unknown state (the server may still run the statement)."""
    pid = await _pid(one_connection)

    async def sleep() -> None:
        async with one_connection.direct() as connection:
            await connection.all(_SLEEP, {"seconds": 1.0})

    with pytest.raises(TimeoutError):
        await asyncio.wait_for(sleep(), 0.05)
    assert await _pid(one_connection) != pid


# --- End to end: the PBX hand-off on a lost connection -------------------------------------------


@postgres_only()
@pytest.mark.committing
async def test_a_handoff_on_a_lost_connection_answers_503_once_and_then_201(
    settings: Settings, committing_engine: AsyncEngine
) -> None:
    """The app's own engine; the signed-in session is answered from the process's cache, so
    the lost connection is met by the hand-off's direct statements, not by the token check."""
    app = create_app(settings.model_copy(update={"database_pool_size": 1}), run_background=False)
    state = app.state.eservice
    authenticator = state.authenticator
    assert isinstance(authenticator, CachedAuthenticator)
    authenticator.cache.activate()
    try:
        async with state.database.sessionmaker.begin() as session:
            customer = await create_customer(session)
            user = await create_user(session, state, customer, role=Role.PBX_ADMIN)
            contract = await create_contract(session, customer, pbx_tenant="t-503")
            headers = await auth_headers(session, state, user)
        url = f"/api/v1/contracts/{contract.id}/pbx-sessions"
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            warm = await client.post(url, headers=headers)
            assert warm.status_code == 201, warm.text
            await _terminate(await _pid(state.database))
            lost = await client.post(url, headers=headers)
            again = await client.post(url, headers=headers)
        async with committing_engine.connect() as connection:
            opened = await connection.execute(
                select(func.count())
                .select_from(EVENTS)
                .where(EVENTS.c.action == "pbx.opened", EVENTS.c.customer_id == customer.id)
            )
            events = opened.scalar_one()
    finally:
        await state.database.dispose()
    assert lost.status_code == 503, lost.text
    assert lost.headers["content-type"] == PROBLEM_JSON
    assert lost.json()["code"] == "database_unavailable"
    assert again.status_code == 201, again.text
    assert events == 2  # the hand-off that failed recorded nothing


@pytest.mark.committing
async def test_a_handoff_whose_token_check_reads_the_database_does_not_wait_for_itself(
    settings: Settings, committing_engine: AsyncEngine
) -> None:
    """The app's own engine (on SQLite one connection for the process), the sign-in cache
    off: the token check's read and the hand-off's transaction take the connection in turn,
    because the transaction takes it only at its first statement."""
    app = create_app(settings.model_copy(update={"database_pool_size": 1}), run_background=False)
    state = app.state.eservice
    try:
        async with state.database.sessionmaker.begin() as session:
            customer = await create_customer(session)
            user = await create_user(session, state, customer, role=Role.PBX_ADMIN)
            contract = await create_contract(session, customer, pbx_tenant="t-turns")
            headers = await auth_headers(session, state, user)
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            response = await asyncio.wait_for(
                client.post(f"/api/v1/contracts/{contract.id}/pbx-sessions", headers=headers),
                timeout=5,
            )
    finally:
        await state.database.dispose()
    assert response.status_code == 201, response.text


class _BrokenProtocol:
    """An asyncpg connection whose protocol state is broken, as asyncpg leaves one that meets
    the farewell message of a backend the server ended while it sat in the pool (seen now and
    then when a test terminates the backend; not reproducible on demand)."""

    async def fetch(self, *_args: Any) -> list[Any]:
        raise asyncpg.exceptions.InternalClientError(
            "cannot switch to state 11; another operation (2) is in progress"
        )

    def is_closed(self) -> bool:
        return False


async def test_a_broken_asyncpg_protocol_is_a_lost_connection() -> None:
    """Answered 503 (OperationalError, invalidated) and the connection discarded, not a 500."""
    connection = PostgresConnection(
        cast(asyncpg.Connection, _BrokenProtocol()), PGDialect_asyncpg(), nested=False
    )
    with pytest.raises(OperationalError) as raised:
        await connection.all(Prepared(select(literal_column("1"))), {})
    assert raised.value.connection_invalidated
    assert connection.broken
