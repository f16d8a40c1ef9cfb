"""PostgreSQL: hear of the changes any process makes to rows that caches here remember.

Triggers NOTIFY a channel at commit with the id of the changed row's owner (migrations 0003
and 0004). This task LISTENs to every channel on a connection of its own and tells the
caches of each; while that connection is down, those caches are off and every request reads
the database.
"""

import asyncio
import logging
from collections.abc import Mapping
from typing import Protocol

import asyncpg
from sqlalchemy.engine import make_url

logger = logging.getLogger("app.core.notifications")

# How often the listening connection proves it is alive, and how long it may take to.
HEARTBEAT = 10.0
HEARTBEAT_TIMEOUT = 5.0
RETRY_MAX = 30.0


class Listening(Protocol):
    """A cache that is exact only while it hears of every change (app/core/changes.py)."""

    def activate(self) -> None: ...

    def deactivate(self) -> None: ...

    def heard(self, payload: str) -> None: ...


def _dsn(database_url: str) -> str:
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


async def listen_for_changes(database_url: str, channels: Mapping[str, Listening]) -> None:
    """Keep the caches of `channels` in step with every writer; reconnect when cut off."""
    retry = 1.0
    while True:
        try:
            await _listen(_dsn(database_url), channels)
            logger.warning("change listener lost its connection; reconnecting")
            retry = 1.0
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.warning(
                "change listener failed; retrying",
                extra={"reason": type(exc).__name__, "retry_in_s": retry},
            )
        await asyncio.sleep(retry)
        retry = min(retry * 2, RETRY_MAX)


async def _listen(dsn: str, channels: Mapping[str, Listening]) -> None:
    """One listening connection: the caches are on while it lasts, and off as it ends."""
    connection = await asyncpg.connect(dsn)
    lost = asyncio.Event()

    def changed(_connection: object, _pid: int, channel: str, payload: str) -> None:
        channels[channel].heard(payload)

    try:
        connection.add_termination_listener(lambda _connection: lost.set())
        for channel in channels:
            await connection.add_listener(channel, changed)
        for cache in channels.values():
            cache.activate()
        while not lost.is_set():
            try:
                await asyncio.wait_for(lost.wait(), HEARTBEAT)
            except TimeoutError:
                await asyncio.wait_for(connection.fetchval("SELECT 1"), HEARTBEAT_TIMEOUT)
    finally:
        for cache in channels.values():
            cache.deactivate()
        if not connection.is_closed():
            connection.terminate()
