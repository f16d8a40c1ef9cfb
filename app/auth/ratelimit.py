"""Fixed-window attempt counters in the `login_throttles` table, shared by all processes.

One atomic statement counts an attempt, so concurrent attempts are all counted (also on
PostgreSQL with many API processes). Keys are namespaced by their user, e.g.
`reset:login:<login_key>`, `reset:ip:<address>`, `invite:user:<id>:hour`.

Windows must not exceed a day: the pruning job (app/auth/throttle.py) deletes counters that
nobody has touched for 24 hours.
"""

from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import repository
from app.core.clock import utcnow
from app.core.errors import RateLimited


async def count_attempt(
    session: AsyncSession, key: str, *, window: timedelta, now: datetime | None = None
) -> tuple[int, datetime]:
    """Count one attempt under `key`: the attempts in the current window, and its start."""
    now = now or utcnow()
    return await repository.count_in_window(
        session, key, now=now, window_started_before=now - window
    )


async def enforce_limit(
    session: AsyncSession,
    key: str,
    *,
    limit: int,
    window: timedelta,
    now: datetime | None = None,
) -> None:
    """Count an attempt; raise `RateLimited` (kept, so the count sticks) beyond `limit`."""
    now = now or utcnow()
    attempts, started = await count_attempt(session, key, window=window, now=now)
    if attempts > limit:
        retry_after = int((started + window - now).total_seconds()) + 1
        raise RateLimited(retry_after, "Too many attempts; try again later.", keep_changes=True)


async def attempts_in_window(
    session: AsyncSession, key: str, *, window: timedelta, now: datetime | None = None
) -> int:
    """How many attempts `key` has in its current window, without counting one."""
    now = now or utcnow()
    counters = await repository.read_counters(session, key)
    if not counters or counters[0].window_started_at <= now - window:
        return 0
    return counters[0].failures


async def forget(session: AsyncSession, key: str) -> None:
    """Drop the counter of `key` (e.g. after a successful login)."""
    await repository.delete_counter(session, key)
