"""Database access: the declarative base, the engine, and the request's one commit point."""

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, cast

from fastapi import Depends, Request
from sqlalchemy import DateTime, MetaData, event
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Session
from sqlalchemy.pool import AsyncAdaptedQueuePool, PoolProxiedConnection
from sqlalchemy.types import TypeDecorator
from sqlalchemy.util.concurrency import greenlet_spawn

from app.core.checkpoints import INLINE_LIMIT
from app.core.config import Settings
from app.core.direct import DirectConnection, PostgresConnection, SQLiteConnection, Transaction
from app.core.sqlite_driver import inline_connector

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


# How long a SQLite statement waits for another process's write lock before it fails.
SQLITE_BUSY_TIMEOUT = 10.0
# A pooled PostgreSQL connection idle for longer than this is pinged before it is used.
PING_AFTER_IDLE = 10.0
_IDLE_SINCE = "eservice_idle_since"


class Base(DeclarativeBase):
    """Declarative base of every table, with a constraint naming convention."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC, on SQLite too (which stores it naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


SQLITE_CACHE_KIB = 64 * 1024  # the page cache of a SQLite connection (SQLite's default: 2 MiB)


def _configure_sqlite(engine: AsyncEngine) -> None:
    """WAL, foreign keys, a busy timeout; and transactions that really begin (for SAVEPOINTs).

    pysqlite's own transaction handling does not emit BEGIN before SELECTs, which breaks
    SAVEPOINT and repeatable reads; SQLAlchemy documents taking it over like this.
    BEGIN IMMEDIATE takes the write lock up front so two writers never deadlock on an
    upgrade from a read lock.
    """

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # The connection comes with isolation_level None and without a busy timeout (see
        # app/core/sqlite_driver.py).
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        # SQLite's default page cache is 2 MiB; a page that falls out of it is read again
        # through a system call. The process's one connection keeps up to this much.
        cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
        # Checkpoints run in a thread of the serving process (app/core/checkpoints.py); a
        # commit checkpoints on the event loop's thread only if the WAL grows this long.
        cursor.execute(f"PRAGMA wal_autocheckpoint={INLINE_LIMIT}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def _ensure_sqlite_folder(url: str) -> None:
    """Create the folder of a SQLite file (./var/ on a fresh clone): SQLite creates only files."""
    database = make_url(url).database
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).parent.mkdir(parents=True, exist_ok=True)


def sqlite_connect_args(database_url: str) -> tuple[Sequence[Any], Mapping[str, Any]]:
    """What SQLAlchemy's SQLite dialect passes to `sqlite3.connect` for this URL."""
    url = make_url(database_url)
    args, kwargs = url.get_dialect()().create_connect_args(url)
    return args, kwargs


def create_engine(settings: Settings) -> AsyncEngine:
    """The engine for the configured database.

    SQLite admits one writer at a time, so one process shares one connection: requests
    queue for it instead of failing with "database is locked". Its statements run on the
    event loop's thread (app/core/sqlite_driver.py).
    """
    if settings.is_sqlite:
        _ensure_sqlite_folder(settings.database_url)
        engine = create_async_engine(
            settings.database_url,
            poolclass=AsyncAdaptedQueuePool,
            pool_size=1,
            max_overflow=0,
            async_creator=inline_connector(
                sqlite_connect_args(settings.database_url), SQLITE_BUSY_TIMEOUT
            ),
        )
        _configure_sqlite(engine)
        return engine
    # A pool of a fixed size: a request beyond it waits for a connection to come back. An
    # overflow connection would be opened for one request and closed after it; under load
    # that is a new server process and a handshake for every request beyond the pool.
    engine = create_async_engine(
        settings.database_url,
        pool_size=settings.database_pool_size,
        max_overflow=0,
    )
    _ping_idle_connections(engine)
    _answer_unreachable_servers(engine)
    return engine


def _answer_unreachable_servers(engine: AsyncEngine) -> None:
    """A server that cannot be reached (refused, an unknown host, a timeout) as the DB-API's
    OperationalError, which SQLAlchemy wraps and the API answers with `503`: asyncpg raises
    these as plain OSErrors, which would otherwise pass through as they are."""

    @event.listens_for(engine.sync_engine, "do_connect")
    def _connect(dialect: Dialect, _record: Any, cargs: Any, cparams: Any) -> Any:
        try:
            return dialect.connect(*cargs, **cparams)
        except OSError as error:
            message = f"cannot reach the database server: {error}"
            raise dialect.loaded_dbapi.OperationalError(message, error) from error


def _ping_idle_connections(engine: AsyncEngine) -> None:
    """Check a pooled connection before use only if it sat idle for a while.

    A connection that was idle may have been closed meanwhile (a server restart, a firewall's
    idle timeout); a ping finds that and the pool opens a fresh one instead. SQLAlchemy's
    `pool_pre_ping` pings on every checkout, which on asyncpg costs three round trips per
    request; a connection checked in moments ago is alive far more often than not, and if
    the server went away in between, the request fails once with `503`.
    """

    @event.listens_for(engine.sync_engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get(_IDLE_SINCE)
        if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:
            # The pool discards this connection and checks out (or opens) another.
            raise DisconnectionError("the pooled connection is gone") from exc


def _driver_of(
    pooled: PoolProxiedConnection, dialect: Dialect, *, nested: bool
) -> DirectConnection:
    kind = SQLiteConnection if dialect.name == "sqlite" else PostgresConnection
    return kind(cast(Any, pooled.driver_connection), dialect, nested=nested)


async def _driver_in(connection: AsyncConnection) -> DirectConnection:
    """The driver of a connection in a transaction begun through SQLAlchemy, inside that
    transaction (a `transaction()` on it is a savepoint)."""
    pooled = await connection.get_raw_connection()
    # SQLAlchemy's asyncpg adapter sends BEGIN with its first statement on the connection;
    # until then (its `_transaction` is None) the driver is in autocommit. A statement
    # through SQLAlchemy begins it (and would, were that attribute ever to go).
    adapter = pooled.dbapi_connection
    if connection.dialect.name == "postgresql" and getattr(adapter, "_transaction", None) is None:
        await connection.exec_driver_sql("SELECT 1")
    return _driver_of(pooled, connection.dialect, nested=True)


_DIRECT = "eservice_direct"


@event.listens_for(Session, "after_transaction_end")
def _forget_direct(session: Session, _transaction: Any) -> None:
    # After a commit or rollback the session may go on on another pooled connection.
    session.info.pop(_DIRECT, None)


async def direct_in(session: AsyncSession) -> DirectConnection:
    """Direct statements in the ORM session's own transaction, which its unit of work commits
    or rolls back: for the Core statements that a unit of work runs on every login and for
    every audit event. Made once per transaction of the session."""
    found: DirectConnection | None = session.info.get(_DIRECT)
    if found is None:
        found = session.info[_DIRECT] = await _driver_in(await session.connection())
    return found


class Database:
    """The engine and the session factory of one process (or of one test)."""

    def __init__(self, bind: AsyncEngine | AsyncConnection) -> None:
        self.bind = bind
        self.sessionmaker = async_sessionmaker(
            bind=bind,
            expire_on_commit=False,
            autoflush=False,
            # In tests, bind is a connection inside an outer transaction that is rolled back.
            join_transaction_mode="create_savepoint",
        )

    @property
    def dialect(self) -> str:
        return self.bind.dialect.name

    @asynccontextmanager
    async def direct(self) -> AsyncIterator[DirectConnection]:
        """A pooled connection's driver, for `Prepared` statements (app/core/direct.py).

        Each statement is its own transaction unless `transaction()` began one. A connection
        left in an unknown state (a statement interrupted, a lost server) is discarded by the
        pool rather than handed to the next request. A test's connection is used as it is,
        with savepoints in the transaction the test rolls back.

        Not while the request's own session holds a connection: SQLite's pool has only that
        one, and this would wait for it until the pool's timeout.
        """
        if isinstance(self.bind, AsyncConnection):
            yield await _driver_in(self.bind)
            return
        pooled = await self._checkout(self.bind)
        driver = _driver_of(pooled, self.bind.dialect, nested=False)
        try:
            yield driver
        finally:
            if driver.broken:
                await greenlet_spawn(pooled.invalidate)
            await greenlet_spawn(pooled.close)

    @staticmethod
    async def _checkout(engine: AsyncEngine) -> PoolProxiedConnection:
        """A connection from the pool; a failure to open one raised as SQLAlchemy's error,
        as `engine.connect()` raises it."""
        dbapi_error = engine.dialect.loaded_dbapi.Error
        try:
            return await greenlet_spawn(engine.sync_engine.raw_connection)
        except dbapi_error as error:
            raise DBAPIError.instance(None, None, error, dbapi_error) from error

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        """A transaction on `direct()`'s connection, taken at its first statement; committed
        when the block ends, or as `keeps_changes` says on an error, rolled back otherwise."""
        transaction = Transaction(self.direct)
        async with _ended_by(transaction.end):
            yield transaction

    async def dispose(self) -> None:
        if isinstance(self.bind, AsyncEngine):
            await self.bind.dispose()


def database_of(request: Request) -> Database:
    database: Database = request.app.state.eservice.database
    return database


async def get_database(request: Request) -> Database:
    """The app's database, as a dependency (async: FastAPI runs plain functions in a thread)."""
    return database_of(request)


@asynccontextmanager
async def _ended_by(end: Callable[..., Awaitable[None]]) -> AsyncIterator[None]:
    """Ends a unit of work when the block does: `end(commit=True)`, or on an error as
    `keeps_changes` says. The one rule for every form of the request's unit of work."""
    try:
        yield
    except BaseException as error:
        await end(commit=keeps_changes(error))
        raise
    await end(commit=True)


def keeps_changes(error: BaseException) -> bool:
    """Whether a unit of work that ended with `error` commits all the same.

    An AppError raised with `keep_changes=True` does: a failed login is refused, but its
    throttling counter and audit event must stay. Any other error rolls back.
    """
    from app.core.errors import AppError

    return isinstance(error, AppError) and error.keep_changes


async def _session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's unit of work: commits before the response, rolls back on any error
    (but those that `keeps_changes`)."""
    async with database_of(request).sessionmaker() as session, _ended_by(_ender(session)):
        yield session


def _ender(session: AsyncSession) -> Callable[..., Awaitable[None]]:
    async def end(*, commit: bool) -> None:
        await (session.commit() if commit else session.rollback())

    return end


class UnitOfWork:
    """The request's unit of work for a path that takes either form, decided as it goes: the
    ORM session, or direct statements (`queries`) where all its statements are `Prepared`.

    Both begin at their first use (the session is made only then) and are ended by the
    dependency as `_session` ends the session. A request writes in one of them only. A path
    that changes form ends the direct statements first (`discard_queries`), which gives their
    connection back: on SQLite the session would wait for it otherwise.
    """

    __slots__ = ("_session", "_sessionmaker", "queries")

    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], queries: Transaction
    ) -> None:
        self._sessionmaker = sessionmaker
        self._session: AsyncSession | None = None
        self.queries = queries

    @property
    def session(self) -> AsyncSession:
        if self._session is None:
            self._session = self._sessionmaker()
        return self._session

    async def discard_queries(self) -> None:
        """Roll back the direct statements, which changed nothing, and give their connection
        back, for a path that goes on in the session."""
        await self.queries.end(commit=False)

    async def _end_session(self, *, commit: bool) -> None:
        session, self._session = self._session, None
        if session is not None:
            try:
                await _ender(session)(commit=commit)
            finally:
                await session.close()


async def _unit(request: Request) -> AsyncIterator[UnitOfWork]:
    """`UnitOfWork`: the session ends first, then the direct statements' transaction."""
    database = database_of(request)
    async with database.transaction() as queries:
        unit = UnitOfWork(database.sessionmaker, queries)
        async with _ended_by(unit._end_session):
            yield unit


get_session = _session
get_unit = _unit
# The forms of the request's one unit of work: an endpoint declares one of them (DbUnit
# holds the session and a transaction of direct statements, for a path that chooses as it
# goes), and never commits itself.
DbSession = Annotated[AsyncSession, Depends(get_session, scope="function")]
DbUnit = Annotated[UnitOfWork, Depends(get_unit, scope="function")]
# The database itself, for an endpoint that only reads (`Database.direct`).
Db = Annotated[Database, Depends(get_database)]
