"""Login throttling (DESIGN.md section 6), shared by all processes through `login_throttles`.

Two counters guard every password check:

- per login ID (`login:<normalised login>`, whether or not such an account exists, so unknown
  logins behave exactly like known ones): consecutive failures. From the 5th on, the next
  attempt must wait 60 s after the last failure, growing by 60 s per further failure up to
  15 min. The 100th consecutive failure locks the account (the caller does that). A success
  resets the counter; so does a day without failures.
- per client IP (`ip:<address>`): at most 30 failures in a fixed window of 15 min.

Each failure is counted by one atomic statement (an upsert with RETURNING), so concurrent
failures are all counted, also with many API processes on PostgreSQL.
"""

import asyncio
import hashlib
import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import repository
from app.auth.ratelimit import count_attempt, forget
from app.core.clock import utcnow
from app.core.config import Settings
from app.core.errors import RateLimited
from app.core.state import AppState

logger = logging.getLogger("app.auth.throttle")

# A streak of failures is forgotten a day after its last failure. Reaching the lock takes
# about 22 h at the fastest pace the delays allow, so the lock stays reachable.
FAILURE_MEMORY = timedelta(hours=24)
# Rows untouched this long are stale for every counter in the table (windows are <= 1 day).
STALE_AFTER = timedelta(hours=24)
PRUNE_INTERVAL = 600.0

_KEY_LENGTH = 100  # login_throttles.key is String(100)


def login_throttle_key(login_key: str) -> str:
    """The counter key of a normalised login (`UserAccount.key_for`)."""
    key = f"login:{login_key}"
    if len(key) > _KEY_LENGTH:  # casefold() may lengthen exotic input; hash it to fit
        key = "login#" + hashlib.sha256(login_key.encode()).hexdigest()
    return key


def ip_throttle_key(client_ip: str) -> str:
    return f"ip:{client_ip}"


def login_delay(settings: Settings, failures: int) -> timedelta:
    """How long after the last of `failures` consecutive failures the next attempt must wait."""
    steps = failures - settings.login_failures_before_delay + 1
    if steps <= 0:
        return timedelta(0)
    return min(settings.login_delay_step * steps, settings.login_delay_max)


@dataclass(frozen=True, slots=True)
class ThrottleCheck:
    """Whether a password may be checked now, and whether the login has a failure counter."""

    wait: int | None  # seconds until allowed (for `Retry-After`), None if allowed now
    login_counted: bool  # a success has a counter to reset


async def check_throttle(
    session: AsyncSession,
    settings: Settings,
    *,
    login_key: str,
    client_ip: str | None,
    now: datetime | None = None,
) -> ThrottleCheck:
    """The counters of the login and the client IP, read in one query."""
    login = login_throttle_key(login_key)
    ip = ip_throttle_key(client_ip) if client_ip is not None else None
    counters = await repository.read_counters(session, login, ip)
    return judge_counters(settings, counters, login_key=login_key, now=now or utcnow())


def judge_counters(
    settings: Settings,
    counters: Iterable[repository.Counter],
    *,
    login_key: str,
    now: datetime,
) -> ThrottleCheck:
    """The verdict of the counters (of the login and the client IP) that exist."""
    login = login_throttle_key(login_key)
    waits: list[timedelta] = []
    login_counted = False
    for counter in counters:
        if counter.key == login:
            login_counted = True
            delay = login_delay(settings, counter.failures)
            # No delay is no wait, also for a failure recorded after `now` by a concurrent
            # request (its counter read here is newer than the moment this one began).
            if delay > timedelta(0) and counter.updated_at > now - FAILURE_MEMORY:
                waits.append(counter.updated_at + delay - now)
        elif counter.failures >= settings.ip_failures_per_window:
            waits.append(counter.window_started_at + settings.ip_failure_window - now)
    wait = max(waits, default=timedelta(0))
    if wait <= timedelta(0):
        return ThrottleCheck(None, login_counted)
    return ThrottleCheck(max(1, math.ceil(wait.total_seconds())), login_counted)


def refuse_if_throttled(check: ThrottleCheck) -> None:
    """429 with `Retry-After` while the login or the client IP must wait (before any hash)."""
    if check.wait is not None:
        raise RateLimited(check.wait, "Too many failed logins; try again later.")


async def record_login_failure(
    session: AsyncSession,
    settings: Settings,
    *,
    login_key: str,
    client_ip: str | None,
    now: datetime | None = None,
) -> int:
    """Count one failed password check; the login's consecutive failures, this one included."""
    now = now or utcnow()
    failures = await repository.count_consecutive(
        session, login_throttle_key(login_key), now=now, forget_before=now - FAILURE_MEMORY
    )
    if client_ip is not None:
        await count_attempt(
            session, ip_throttle_key(client_ip), window=settings.ip_failure_window, now=now
        )
    return failures


async def clear_login_failures(session: AsyncSession, login_key: str) -> None:
    """Reset the consecutive failures of a login (successful login, admin unlock, reset)."""
    await forget(session, login_throttle_key(login_key))


async def prune_stale_throttles(session: AsyncSession, now: datetime | None = None) -> int:
    """Delete counters nobody has touched for a day: they count nothing any more."""
    now = now or utcnow()
    return await repository.delete_counters_untouched_since(session, now - STALE_AFTER)


async def prune_throttles_periodically(state: AppState) -> None:
    """Background job: prune stale counters every few minutes, for as long as the app runs."""
    while True:
        try:
            async with state.database.sessionmaker.begin() as session:
                removed = await prune_stale_throttles(session)
            if removed:
                logger.info("pruned stale throttling counters", extra={"removed": removed})
        except Exception:
            logger.exception("pruning throttling counters failed")
        await asyncio.sleep(PRUNE_INTERVAL)
