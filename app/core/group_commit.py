"""Rows that concurrent requests insert alone, written together in one transaction.

A request whose only write is one row (the audit event of a PBX hand-off) would otherwise
pay for a transaction of its own: a connection from the pool, BEGIN, the INSERT, COMMIT,
and on SQLite the WAL pages of that commit. Here it hands its row over and waits; the rows
of every request that arrived meanwhile are written with one statement in one transaction,
and each request goes on only once its row is committed. Under no load a row is written as
soon as its request yields to the event loop, so it waits no longer than it did alone.

Only one transaction is under way at a time: the rows that come while it runs are the next
one's. If a transaction fails, every request of it gets the error (a lost database: `503`),
except that on an integrity error each row is tried alone, so that only the request whose
row is at fault fails.
"""

import asyncio
from collections.abc import Mapping
from typing import Any

from sqlalchemy.exc import IntegrityError

from app.core.db import Database
from app.core.direct import DirectConnection, Prepared

_Waiting = tuple[Mapping[str, Any], "asyncio.Future[None]"]


class GroupCommit:
    """Writes the rows of one INSERT statement that are handed over together."""

    def __init__(self, database: Database, statement: Prepared) -> None:
        self._database = database
        self._statement = statement
        self._pending: list[_Waiting] = []
        self._writer: asyncio.Task[None] | None = None

    async def write(self, row: Mapping[str, Any]) -> None:
        """Insert `row`; returns once it is committed, raises what the transaction raised.

        A request cancelled while it waits does not take its row back: it is written.
        """
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((row, future))
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_pending())
        await future

    async def close(self) -> None:
        """Wait until every row handed over is written."""
        while self._writer is not None:
            await asyncio.shield(self._writer)

    async def _write_pending(self) -> None:
        try:
            while self._pending:
                try:
                    # One connection while rows keep coming: under load the next rows are
                    # there by the time a write returns.
                    async with self._database.direct() as connection:
                        while self._pending and await self._write(connection, self._take()):
                            pass
                except BaseException as error:
                    # No connection to write with: the rows handed over fail with that.
                    _settle(self._take(), error)
                    if not isinstance(error, Exception):
                        raise
        finally:
            self._writer = None

    def _take(self) -> list[_Waiting]:
        batch, self._pending = self._pending, []
        return batch

    async def _write(self, connection: DirectConnection, batch: list[_Waiting]) -> bool:
        """Write `batch` and wake its requests; False if the connection may be unusable."""
        try:
            await connection.insert_atomically(self._statement, [row for row, _ in batch])
        except IntegrityError as error:
            if len(batch) == 1:
                _settle(batch, error)
                return True
            for waiting in batch:
                await self._write(connection, [waiting])
        except BaseException as error:
            _settle(batch, error)
            if not isinstance(error, Exception):
                raise
            return False
        else:
            _settle(batch, None)
        return True


def _settle(batch: list[_Waiting], error: BaseException | None) -> None:
    """Wake every waiting request of `batch` (not one that stopped waiting)."""
    for _, future in batch:
        if future.done():
            continue
        if error is None:
            future.set_result(None)
        elif isinstance(error, asyncio.CancelledError):
            future.cancel()
        else:
            future.set_exception(error)
