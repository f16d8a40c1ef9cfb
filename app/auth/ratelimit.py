"""Fixed-window attempt counters in the `login_throttles` table, shared by all processes.

One atomic statement counts an attempt, so concurrent attempts are all counted (also on
PostgreSQL with many API processes). Keys are namespaced by their user, e.g.
`reset:login:<login_key>`, `reset:ip:<address>`, `invite:user:<id>:hour`.

Windows must not exceed a day: the pruning job (app/auth/throttle.py) deletes counters that
nobody has touched for 24 hours.
"""

from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import Table, bindparam, case, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.models import LoginThrottle
from app.core.clock import utcnow
from app.core.errors import RateLimited

_FORGET = delete(cast(Table, LoginThrottle.__table__)).where(
    LoginThrottle.__table__.c.key == bindparam("key")
)


async def count_attempt(
    session: AsyncSession, key: str, *, window: timedelta, now: datetime | None = None
) -> tuple[int, datetime]:
    """Count one attempt under `key`: the attempts in the current window, and its start."""
    now = now or utcnow()
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    await session.execute(
        insert(LoginThrottle)
        .values(key=key, failures=0, window_started_at=now, updated_at=now)
        .on_conflict_do_nothing(index_elements=["key"])
    )
    expired = LoginThrottle.window_started_at <= now - window
    row = (
        await session.execute(
            update(LoginThrottle)
            .where(LoginThrottle.key == key)
            .values(
                failures=case((expired, 1), else_=LoginThrottle.failures + 1),
                window_started_at=case((expired, now), else_=LoginThrottle.window_started_at),
                updated_at=now,
            )
            .returning(LoginThrottle.failures, LoginThrottle.window_started_at)
            .execution_options(synchronize_session=False)
        )
    ).one()
    return int(row[0]), row[1]


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
    row = (
        await session.execute(
            select(LoginThrottle.failures, LoginThrottle.window_started_at).where(
                LoginThrottle.key == key
            )
        )
    ).one_or_none()
    if row is None or row[1] <= now - window:
        return 0
    return int(row[0])


async def forget(session: AsyncSession, key: str) -> None:
    """Drop the counter of `key` (e.g. after a successful login)."""
    await session.execute(_FORGET, {"key": key})
