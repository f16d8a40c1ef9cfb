"""PostgreSQL: hear of account and session changes made by any process, at commit.

A trigger (migration 0003) NOTIFYs `eservice_accounts` with the user id whenever a row of
`user_accounts` or `auth_sessions` changes. This task LISTENs on a connection of its own and
tells the cache of signed-in sessions; while that connection is down, the cache is off.
"""

import asyncio
import logging

import asyncpg
from sqlalchemy.engine import make_url

from app.auth.cache import PrincipalCache
from app.core.state import AppState

logger = logging.getLogger("app.auth")

CHANNEL = "eservice_accounts"
# How often the listening connection proves it is alive, and how long it may take to.
HEARTBEAT = 10.0
HEARTBEAT_TIMEOUT = 5.0
RETRY_MAX = 30.0


def _dsn(database_url: str) -> str:
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


async def listen_for_account_changes(state: AppState, cache: PrincipalCache) -> None:
    """Keep `cache` in step with every writer of the database; reconnect when cut off."""
    retry = 1.0
    while True:
        try:
            await _listen(_dsn(state.settings.database_url), cache)
            logger.warning("account change listener lost its connection; reconnecting")
            retry = 1.0
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.warning(
                "account change listener failed; retrying",
                extra={"reason": type(exc).__name__, "retry_in_s": retry},
            )
        await asyncio.sleep(retry)
        retry = min(retry * 2, RETRY_MAX)


async def _listen(dsn: str, cache: PrincipalCache) -> None:
    """One listening connection: the cache is on while it lasts, and off as it ends."""
    connection = await asyncpg.connect(dsn)
    lost = asyncio.Event()

    def changed(_connection: object, _pid: int, _channel: str, payload: str) -> None:
        if payload.isdigit():
            cache.forget_user(int(payload))
        else:
            cache.forget_all()

    try:
        connection.add_termination_listener(lambda _connection: lost.set())
        await connection.add_listener(CHANNEL, changed)
        cache.activate()
        while not lost.is_set():
            try:
                await asyncio.wait_for(lost.wait(), HEARTBEAT)
            except TimeoutError:
                await asyncio.wait_for(connection.fetchval("SELECT 1"), HEARTBEAT_TIMEOUT)
    finally:
        cache.deactivate()
        if not connection.is_closed():
            connection.terminate()
