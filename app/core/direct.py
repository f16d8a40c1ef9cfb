"""Statements of the hot paths, run on the database driver's own connection.

SQLAlchemy builds every statement of the service and compiles it; what a request pays for
is the execution around it: an execution context, a cursor adapter that hands each call
through a greenlet, a result object. On SQLite that is about 70 µs per statement where the
statement itself takes 3 µs. The statements of the requests asked most often (the user
list, the PBX hand-off, a login's reads and writes, every audit event) run here instead:

- `Prepared` is a Core statement compiled once per dialect, with the bind and result
  processors of its columns' types (timestamps, enums, JSON come and go exactly as through
  SQLAlchemy).
- `DirectConnection` runs it on the driver's connection (sqlite3 or asyncpg), taken from
  and returned to the engine's own pool (`Database.direct`, `Database.transaction`) or an
  ORM session's own (`direct_in`, in that session's transaction), and turns the driver's
  errors into SQLAlchemy's, so the API's error handlers answer them as before (`503` for a
  lost database).

Everything else goes through the ORM session; this is for statements that are built once.
"""

import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Protocol

import asyncpg
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement

from app.core.sqlite_driver import InlineConnection

Row = tuple[Any, ...]
_REQUIRED = object()
_Processor = Callable[[Any], Any] | None


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    names: tuple[str, ...]
    binds: tuple[_Processor, ...]
    # The value of a parameter the statement carries itself (`literal(1)`), or _REQUIRED.
    defaults: tuple[Any, ...]
    # None when no column of the result needs converting.
    results: tuple[_Processor, ...] | None

    def arguments(self, values: Mapping[str, Any]) -> list[Any]:
        arguments = []
        for name, process, default in zip(self.names, self.binds, self.defaults, strict=True):
            value = values[name] if default is _REQUIRED else values.get(name, default)
            arguments.append(value if process is None or value is None else process(value))
        return arguments

    def row(self, raw: Sequence[Any]) -> Row:
        if self.results is None:
            return tuple(raw)
        return tuple(
            value if process is None else process(value)
            for value, process in zip(raw, self.results, strict=True)
        )


class Prepared:
    """A Core statement compiled once for each dialect it runs on.

    Its bind parameters are named (`bindparam("id")`); every one without a value of its own
    must be given one.
    """

    __slots__ = ("_compiled", "statement")

    def __init__(self, statement: ClauseElement) -> None:
        self.statement = statement
        self._compiled: dict[str, _Compiled] = {}

    def compiled(self, dialect: Dialect) -> _Compiled:
        compiled = self._compiled.get(dialect.name)
        if compiled is None:
            compiled = self._compiled[dialect.name] = self._compile(dialect)
        return compiled

    def _compile(self, dialect: Dialect) -> _Compiled:
        compiler = self.statement.compile(dialect=dialect)
        if not isinstance(compiler, SQLCompiler) or compiler.positiontup is None:
            raise TypeError(f"{dialect.name}: not a positional SQL statement")
        names = tuple(compiler.positiontup)
        bind_processors, defaults = [], []
        for name in names:
            bind = compiler.binds[name]
            if bind.expanding:
                raise TypeError(f"bind parameter {name!r}: lists are not supported here")
            bind_processors.append(bind.type.dialect_impl(dialect).bind_processor(dialect))
            defaults.append(_REQUIRED if bind.required else bind.effective_value)
        result_processors = tuple(
            column.type.dialect_impl(dialect).result_processor(dialect, None)
            for column in getattr(self.statement, "selected_columns", ())
        )
        return _Compiled(
            compiler.string,
            names,
            tuple(bind_processors),
            tuple(defaults),
            result_processors if any(result_processors) else None,
        )


class Queries(Protocol):
    """What runs `Prepared` statements: a `DirectConnection` or a `Transaction`."""

    async def all(self, statement: Prepared, values: Mapping[str, Any]) -> list[Row]:
        """Every row the statement returns."""

    async def run(self, statement: Prepared, values: Mapping[str, Any]) -> None:
        """Execute a statement whose rows, if any, are not needed."""


class DirectConnection(Queries, Protocol):
    """A pooled connection's driver, for `Prepared` statements."""

    # True while a call is under way and after one that lost the connection: a connection
    # given back broken (a call cancelled half-way, a lost server) is discarded by the pool.
    broken: bool

    async def begin(self) -> None: ...

    async def commit(self) -> None: ...

    async def insert_atomically(
        self, statement: Prepared, rows: Sequence[Mapping[str, Any]]
    ) -> None: ...

    async def rollback(self) -> None: ...


class Transaction:
    """A transaction that takes its connection and begins on its first statement, as the ORM
    session does: a request that is refused before it reads holds no connection. Ending it
    gives the connection back; a statement after that begins a new transaction."""

    __slots__ = ("_after_commit", "_connect", "_connection", "_held")

    def __init__(
        self, connect: Callable[[], AbstractAsyncContextManager[DirectConnection]]
    ) -> None:
        self._connect = connect
        self._connection: DirectConnection | None = None
        self._held: AbstractAsyncContextManager[DirectConnection] | None = None
        self._after_commit: list[Callable[[], None]] = []

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Call `callback` once the statements run so far are committed (not if rolled back)."""
        self._after_commit.append(callback)

    async def _begun(self) -> DirectConnection:
        if self._connection is None:
            held = self._connect()
            connection = await held.__aenter__()
            self._held = held
            try:
                await connection.begin()
            except BaseException as error:
                self._held = None
                await held.__aexit__(type(error), error, error.__traceback__)
                raise
            self._connection = connection
        return self._connection

    async def all(self, statement: Prepared, values: Mapping[str, Any]) -> list[Row]:
        return await (await self._begun()).all(statement, values)

    async def run(self, statement: Prepared, values: Mapping[str, Any]) -> None:
        await (await self._begun()).run(statement, values)

    async def end(self, *, commit: bool) -> None:
        """Commit or roll back what the statements did, if there were any, and give the
        connection back."""
        connection, held = self._connection, self._held
        callbacks, self._after_commit = self._after_commit, []
        if connection is None or held is None:
            return
        self._connection = self._held = None
        try:
            await (connection.commit() if commit else connection.rollback())
        except BaseException as error:
            await held.__aexit__(type(error), error, error.__traceback__)
            raise
        await held.__aexit__(None, None, None)
        if commit:
            for callback in callbacks:
                callback()


def _translated(error: Exception, sql: str, lost: bool) -> DBAPIError:
    """The driver's error as SQLAlchemy's, as the API's error handlers know them."""
    if isinstance(error, sqlite3.IntegrityError | asyncpg.IntegrityConstraintViolationError):
        return IntegrityError(sql, None, error)
    if lost:
        return OperationalError(sql, None, error, connection_invalidated=True)
    if isinstance(error, sqlite3.OperationalError):
        # "database is locked" after the busy timeout, a full disk, an unreadable file.
        return OperationalError(sql, None, error)
    return DBAPIError(sql, None, error)


class _DriverConnection(ABC):
    """What both drivers share: statements by `Prepared`, and the transaction's own SQL.

    Inside a transaction that is not ours (a test's, rolled back after it) the transaction is
    a savepoint.
    """

    __slots__ = ("_dialect", "broken", "nested")
    BEGIN = "BEGIN"

    def __init__(self, dialect: Dialect, *, nested: bool) -> None:
        self._dialect = dialect
        self.nested = nested
        self.broken = False

    @abstractmethod
    async def _execute(self, sql: str, arguments: Sequence[Any]) -> list[Any]:
        """The rows of one statement, the driver's errors raised as SQLAlchemy's."""

    @abstractmethod
    async def _execute_many(self, sql: str, arguments: list[list[Any]]) -> None:
        """One statement run for each list of arguments, the driver's errors as SQLAlchemy's."""

    async def all(self, statement: Prepared, values: Mapping[str, Any]) -> list[Row]:
        compiled = statement.compiled(self._dialect)
        rows = await self._execute(compiled.sql, compiled.arguments(values))
        return [compiled.row(row) for row in rows]

    async def run(self, statement: Prepared, values: Mapping[str, Any]) -> None:
        compiled = statement.compiled(self._dialect)
        await self._execute(compiled.sql, compiled.arguments(values))

    async def many(self, statement: Prepared, rows: Sequence[Mapping[str, Any]]) -> None:
        """Execute a statement that returns nothing once for each of `rows`."""
        compiled = statement.compiled(self._dialect)
        await self._execute_many(compiled.sql, [compiled.arguments(row) for row in rows])

    async def insert_atomically(
        self, statement: Prepared, rows: Sequence[Mapping[str, Any]]
    ) -> None:
        """`many` in a transaction of its own: every row is written, or none is."""
        await self.begin()
        try:
            await self.many(statement, rows)
        except BaseException:
            await self.rollback()
            raise
        await self.commit()

    async def begin(self) -> None:
        await self._execute("SAVEPOINT direct" if self.nested else self.BEGIN, ())

    async def commit(self) -> None:
        await self._execute("RELEASE SAVEPOINT direct" if self.nested else "COMMIT", ())

    async def rollback(self) -> None:
        if self.nested:
            await self._execute("ROLLBACK TO SAVEPOINT direct", ())
            await self._execute("RELEASE SAVEPOINT direct", ())
        else:
            await self._execute("ROLLBACK", ())


class SQLiteConnection(_DriverConnection):
    """sqlite3 on the event loop's thread (app/core/sqlite_driver.py): every call completes
    at once, except a wait for another process's write lock, which sleeps asynchronously."""

    __slots__ = ("_connection",)
    # The write lock up front, as the ORM session's transactions take it (app/core/db.py).
    BEGIN = "BEGIN IMMEDIATE"

    def __init__(self, connection: InlineConnection, dialect: Dialect, *, nested: bool) -> None:
        super().__init__(dialect, nested=nested)
        self._connection = connection

    async def _execute(self, sql: str, arguments: Sequence[Any]) -> list[Any]:
        rows: list[Any] = await self._call(self._fetch, sql, arguments)
        return rows

    async def _execute_many(self, sql: str, arguments: list[list[Any]]) -> None:
        await self._call(self._fetch_many, sql, arguments)

    async def _call(self, function: Callable[..., Any], sql: str, arguments: Any) -> Any:
        connection = self._connection
        self.broken = True
        try:
            result = await connection.call(function, connection, sql, arguments)
        except sqlite3.Error as error:
            # A closed connection raises ProgrammingError; anything else leaves it usable.
            self.broken = isinstance(error, sqlite3.ProgrammingError)
            raise _translated(error, sql, lost=self.broken) from error
        self.broken = False
        return result

    @staticmethod
    def _fetch(connection: InlineConnection, sql: str, arguments: Sequence[Any]) -> list[Any]:
        return connection.sqlite.execute(sql, arguments).fetchall()

    @staticmethod
    def _fetch_many(connection: InlineConnection, sql: str, arguments: list[list[Any]]) -> None:
        connection.sqlite.executemany(sql, arguments)


# asyncpg's errors that mean the connection is gone or unusable, not that a statement failed.
# InternalClientError: the protocol's state is broken, as when the server ended the backend
# while the connection sat in the pool and the next statement meets its farewell message.
_PG_LOST = (
    OSError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.InternalClientError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,  # the server shuts down or cancels
)


class PostgresConnection(_DriverConnection):
    """An asyncpg connection; statements are prepared once per connection by asyncpg."""

    __slots__ = ("_connection",)

    def __init__(self, connection: asyncpg.Connection, dialect: Dialect, *, nested: bool) -> None:
        super().__init__(dialect, nested=nested)
        self._connection = connection

    async def _execute(self, sql: str, arguments: Sequence[Any]) -> list[Any]:
        rows: list[Any] = await self._call(self._connection.fetch(sql, *arguments), sql)
        return rows

    async def _execute_many(self, sql: str, arguments: list[list[Any]]) -> None:
        await self._call(self._connection.executemany(sql, arguments), sql)

    async def insert_atomically(
        self, statement: Prepared, rows: Sequence[Mapping[str, Any]]
    ) -> None:
        # asyncpg's executemany is atomic by itself (one Sync for all its rows): no BEGIN and
        # COMMIT round trips, unless inside a transaction that is not ours.
        if self.nested:
            await super().insert_atomically(statement, rows)
        else:
            await self.many(statement, rows)

    async def _call(self, call: Awaitable[Any], sql: str) -> Any:
        self.broken = True
        try:
            result = await call
        except (asyncpg.PostgresError, *_PG_LOST) as error:
            self.broken = isinstance(error, _PG_LOST) or self._connection.is_closed()
            raise _translated(error, sql, lost=self.broken) from error
        self.broken = False
        return result
