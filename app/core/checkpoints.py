"""SQLite's WAL checkpoints, in a thread of their own rather than in a request's commit.

In WAL mode a commit appends the pages it changed to the `-wal` file, and a checkpoint
copies them back into the database file and syncs it to disk. By default SQLite runs a
checkpoint inside the commit that makes the WAL reach 1,000 pages. The service's statements
run on the event loop's thread (app/core/sqlite_driver.py), so that commit would hold up
every request for the copy and the syncs (each sync took up to 6 ms under a login flood).

Instead, the serving process checkpoints every INTERVAL seconds in a thread of its own, on
a connection of its own, in PASSIVE mode, which waits for no reader and no writer.
sqlite3 releases the GIL while it works, so requests go on meanwhile. Each connection the
service opens keeps SQLite's own checkpoint-on-commit only as a safety net, at INLINE_LIMIT
pages: it acts if the thread falls behind, or in a command-line process while no service
runs. SQLite also checkpoints when the last connection to a database closes.
"""

import asyncio
import logging
import sqlite3
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple

logger = logging.getLogger(__name__)

INTERVAL = 1.0  # seconds between two checkpoints
INLINE_LIMIT = 10_000  # pages (40 MiB at SQLite's default page size)


class Checkpoint(NamedTuple):
    """What `PRAGMA wal_checkpoint` reports: whether it was blocked, the WAL's length in
    pages and how many of them are now in the database file."""

    busy: int
    wal_pages: int
    checkpointed: int


class WalCheckpointer:
    """Checkpoints of one SQLite database, run on one thread with one connection."""

    def __init__(self, connect_args: tuple[Sequence[Any], Mapping[str, Any]]) -> None:
        args, kwargs = connect_args
        self._args = args
        # Autocommit (a checkpoint cannot run inside a transaction); a short busy timeout for
        # the moment another checkpoint (of a command-line process) holds the lock.
        self._kwargs = {**kwargs, "isolation_level": None, "timeout": 1.0}
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="wal-checkpoint")
        self._connection: sqlite3.Connection | None = None

    def _checkpoint(self) -> Checkpoint:
        if self._connection is None:
            self._connection = sqlite3.connect(*self._args, **self._kwargs)
        row = self._connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return Checkpoint(*row)

    def _close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    async def checkpoint(self) -> Checkpoint:
        return await asyncio.get_running_loop().run_in_executor(self._thread, self._checkpoint)

    async def close(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._thread, self._close)
        self._thread.shutdown()


async def checkpoint_periodically(
    connect_args: tuple[Sequence[Any], Mapping[str, Any]], interval: float = INTERVAL
) -> None:
    """Checkpoint the database every `interval` seconds until cancelled."""
    checkpointer = WalCheckpointer(connect_args)
    try:
        while True:
            await asyncio.sleep(interval)
            try:
                await checkpointer.checkpoint()
            except sqlite3.Error as error:
                # The next round tries again; SQLite's safety net is still there.
                logger.warning("WAL checkpoint failed: %s", error)
    finally:
        await asyncio.shield(checkpointer.close())
