"""SQLite statements on the event loop's own thread, behind SQLAlchemy's aiosqlite dialect.

aiosqlite runs every call of the sqlite3 module in a thread of its own and hands the result
back through the event loop: several thread hand-overs per statement, each costing far more
CPU than the statement itself (SQLite answers a lookup by key in microseconds; the
hand-overs cost tens of microseconds each, hundreds per statement). This driver speaks the
part of aiosqlite's interface that the dialect uses, but calls sqlite3 directly, so an
`await` on it completes at once.

The price is that a statement blocks the event loop while it runs. On the embedded
database of one API process that is short: every lookup of the API uses an index, and a
process has a single connection anyway, so requests queue for it either way. The one wait
that could be long, for another process's write lock (the CLI, a separate mail worker), is
not done by SQLite's busy handler, which would block: the connection has no busy timeout,
and a statement refused with SQLITE_BUSY is retried after an asynchronous sleep, until
`busy_timeout` has passed.
"""

import asyncio
import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any

_FIRST_RETRY = 0.001
_MAX_RETRY = 0.05


def _busy(error: sqlite3.OperationalError) -> bool:
    code = getattr(error, "sqlite_errorcode", None)
    return (code is not None and code & 0xFF == sqlite3.SQLITE_BUSY) or "locked" in str(error)


class InlineCursor:
    """An aiosqlite-style cursor whose coroutines never suspend, but to wait for a lock."""

    __slots__ = ("_connection", "_cursor")

    def __init__(self, connection: "InlineConnection", cursor: sqlite3.Cursor) -> None:
        self._connection = connection
        self._cursor = cursor

    async def __aenter__(self) -> "InlineCursor":
        return self

    async def __aexit__(self, *_exc: object) -> None:
        self._cursor.close()

    async def execute(self, sql: str, parameters: Any = ()) -> "InlineCursor":
        await self._connection.call(self._cursor.execute, sql, parameters)
        return self

    async def executemany(self, sql: str, parameters: Iterable[Any]) -> "InlineCursor":
        rows = list(parameters)  # a retry must see every row again
        await self._connection.call(self._cursor.executemany, sql, rows)
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(size if size is not None else self._cursor.arraysize)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value


class _CursorContext:
    """What `connection.cursor()` returns in aiosqlite: awaitable and an async context."""

    __slots__ = ("_cursor",)

    def __init__(self, cursor: InlineCursor) -> None:
        self._cursor = cursor

    async def __aenter__(self) -> InlineCursor:
        return self._cursor

    async def __aexit__(self, *_exc: object) -> None:
        await self._cursor.close()

    def __await__(self) -> Any:
        return self.__aenter__().__await__()


class InlineConnection:
    """An aiosqlite-style connection over a sqlite3 connection used on the caller's thread."""

    def __init__(self, connection: sqlite3.Connection, busy_timeout: float) -> None:
        self._connection: sqlite3.Connection | None = connection
        self.busy_timeout = busy_timeout

    @property
    def _conn(self) -> sqlite3.Connection:
        if self._connection is None:
            raise ValueError("no active connection")
        return self._connection

    @property
    def sqlite(self) -> sqlite3.Connection:
        """The sqlite3 connection itself (app/core/direct.py runs statements on it)."""
        if self._connection is None:
            raise sqlite3.ProgrammingError("Cannot operate on a closed database.")
        return self._connection

    async def call(self, function: Callable[..., Any], *args: Any) -> Any:
        """`function(*args)`; while another process holds the lock, retry without blocking."""
        deadline: float | None = None
        pause = _FIRST_RETRY
        while True:
            try:
                return function(*args)
            except sqlite3.OperationalError as error:
                if not _busy(error):
                    raise
                now = time.monotonic()
                deadline = deadline if deadline is not None else now + self.busy_timeout
                if now >= deadline:
                    raise
            await asyncio.sleep(pause)
            pause = min(pause * 2, _MAX_RETRY)

    def cursor(self) -> _CursorContext:
        return _CursorContext(InlineCursor(self, self._conn.cursor()))

    async def execute(self, sql: str, parameters: Any = ()) -> InlineCursor:
        cursor = InlineCursor(self, self._conn.cursor())
        return await cursor.execute(sql, parameters)

    async def commit(self) -> None:
        await self.call(self._conn.commit)

    async def rollback(self) -> None:
        self._conn.rollback()

    async def close(self) -> None:
        self.stop()

    def stop(self) -> None:
        """Close at once (the dialect's forced termination)."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._conn.create_function(*args, **kwargs)

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level


def inline_connector(
    connect_args: tuple[Sequence[Any], Mapping[str, Any]], busy_timeout: float
) -> Callable[[], Awaitable[InlineConnection]]:
    """An `async_creator` for `create_async_engine` that opens inline connections.

    `connect_args` are the dialect's own arguments for `sqlite3.connect` (from the URL).
    Transactions are begun explicitly (isolation_level None); SQLite's busy handler is off
    (timeout 0), as waits for a lock are done in `InlineConnection.call`.
    """
    args, kwargs = connect_args
    kwargs = {**kwargs, "check_same_thread": False, "isolation_level": None, "timeout": 0}

    async def connect() -> InlineConnection:
        return InlineConnection(sqlite3.connect(*args, **kwargs), busy_timeout)

    return connect
