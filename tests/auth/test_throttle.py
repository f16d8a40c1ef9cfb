"""Login throttling as DESIGN.md section 6: delays, the lock at 100, the per-IP limit."""

import asyncio
import contextlib
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.models import LoginThrottle
from app.auth.repository import Counter
from app.auth.throttle import (
    check_throttle,
    clear_login_failures,
    judge_counters,
    login_delay,
    login_throttle_key,
    prune_stale_throttles,
    prune_throttles_periodically,
    record_login_failure,
)
from app.core.clock import clock, utcnow
from app.core.config import Settings
from app.core.state import AppState
from app.main import background_jobs
from app.users.status import UserStatus
from tests.auth.helpers import audit_actions, client_from, log_in, mails_to, throttle_failures
from tests.factories import PASSWORD, create_customer, create_user

WRONG = "not the password at all"


@pytest.mark.parametrize(
    ("failures", "seconds"),
    [(0, 0), (4, 0), (5, 60), (6, 120), (7, 180), (18, 840), (19, 900), (20, 900), (99, 900)],
)
def test_delay_grows_in_steps_up_to_a_cap(settings: Settings, failures: int, seconds: int) -> None:
    assert login_delay(settings, failures) == timedelta(seconds=seconds)


@pytest.mark.parametrize(("failures", "waits"), [(3, False), (4, False), (5, True)])
def test_a_failure_recorded_by_a_concurrent_request_makes_no_wait_without_a_delay(
    settings: Settings, failures: int, waits: bool
) -> None:
    """A request that began at `now` may read a counter that a concurrent failure updated
    a moment later; below the delay threshold that is still no reason to refuse."""
    now = utcnow()
    login = login_throttle_key("someone")
    newer = Counter(login, failures, window_started_at=now, updated_at=now + timedelta(seconds=2))
    verdict = judge_counters(settings, [newer], login_key="someone", now=now)
    assert verdict.login_counted
    assert (verdict.wait is not None) is waits
    if waits:
        assert verdict.wait == 62  # the 60 s delay counts from that later failure


@pytest.mark.parametrize("known", [True, False])
async def test_after_five_failures_attempts_wait_longer_each_time(
    client: httpx.AsyncClient, session: AsyncSession, state: AppState, known: bool
) -> None:
    if known:
        await create_user(session, state, await create_customer(session), login="target")
    for _ in range(5):
        assert (await log_in(client, "target", WRONG)).status_code == 401

    blocked = await log_in(client, "TARGET", PASSWORD)  # even the right password waits
    assert blocked.status_code == 429
    assert blocked.json()["code"] == "rate_limited"
    assert 58 <= int(blocked.headers["retry-after"]) <= 60

    clock.advance(timedelta(seconds=61))
    assert (await log_in(client, "target", WRONG)).status_code == 401
    second = await log_in(client, "target", WRONG)
    assert second.status_code == 429
    assert 118 <= int(second.headers["retry-after"]) <= 120

    clock.advance(timedelta(seconds=121))
    final = await log_in(client, "target", PASSWORD)
    assert final.status_code == (200 if known else 401)
    if known:  # a success resets the counter: the next failure is a plain 401 again
        assert await throttle_failures(session, "login:target") is None
        assert (await log_in(client, "target", WRONG)).status_code == 401
        assert (await log_in(client, "target", PASSWORD)).status_code == 200


async def test_retry_after_is_capped_at_fifteen_minutes(
    session: AsyncSession, settings: Settings
) -> None:
    now = utcnow()
    for _ in range(40):
        await record_login_failure(session, settings, login_key="capped", client_ip=None, now=now)
    check = await check_throttle(session, settings, login_key="capped", client_ip=None, now=now)
    assert check.wait == 900
    assert check.login_counted


async def test_hundred_consecutive_failures_lock_the_account_and_mail_a_reset_link(
    app: FastAPI, session: AsyncSession, state: AppState, settings: Settings
) -> None:
    customer = await create_customer(session)
    user = await create_user(session, state, customer, login="victim")
    async with client_from(app, "192.0.2.10") as client:
        for _ in range(5):
            assert (await log_in(client, "victim", WRONG)).status_code == 401
        # Failures 6-98 as the endpoint counts them, without waiting out ~20 h of delays.
        for _ in range(6, 99):
            await record_login_failure(session, settings, login_key="victim", client_ip=None)
        for attempt in (99, 100):
            clock.advance(settings.login_delay_max + timedelta(seconds=1))
            response = await log_in(client, "victim", WRONG)
            assert response.status_code == 401, (attempt, response.text)
            await session.refresh(user)
            assert user.status == (UserStatus.ACTIVE if attempt == 99 else UserStatus.LOCKED)
        await session.refresh(user)
        assert user.status == UserStatus.LOCKED
        mails = await mails_to(session, user.id)
        assert [mail.kind for mail in mails] == ["password_reset"]
        assert "#token=" in mails[0].body_text
        assert "user.locked" in await audit_actions(session, user.id)
        assert "password.reset_requested" in await audit_actions(session, user.id)

        clock.advance(settings.login_delay_max + timedelta(seconds=1))
        assert (await log_in(client, "victim", PASSWORD)).status_code == 401


async def test_at_most_thirty_failures_per_ip_in_fifteen_minutes(
    app: FastAPI, session: AsyncSession, state: AppState
) -> None:
    await create_user(session, state, await create_customer(session), login="innocent")
    async with (
        client_from(app, "198.51.100.7") as attacker,
        client_from(app, "203.0.113.9") as other,
    ):
        for number in range(30):  # different logins: no login is throttled on its own
            assert (await log_in(attacker, f"guess{number}", WRONG)).status_code == 401
        refused = await log_in(attacker, "innocent", PASSWORD)
        assert refused.status_code == 429
        assert 890 <= int(refused.headers["retry-after"]) <= 900
        assert (await log_in(other, "innocent", PASSWORD)).status_code == 200

        clock.advance(timedelta(minutes=15, seconds=1))
        assert (await log_in(attacker, "innocent", PASSWORD)).status_code == 200


async def test_successes_do_not_count_against_the_ip(
    app: FastAPI, session: AsyncSession, state: AppState
) -> None:
    await create_user(session, state, await create_customer(session), login="office")
    async with client_from(app, "198.51.100.8") as office:
        for _ in range(31):
            assert (await log_in(office, "office", PASSWORD)).status_code == 200


async def test_clear_login_failures_lifts_the_delay(
    client: httpx.AsyncClient, session: AsyncSession, state: AppState
) -> None:
    await create_user(session, state, await create_customer(session), login="Unlock.Me")
    for _ in range(5):
        await log_in(client, "unlock.me", WRONG)
    assert (await log_in(client, "unlock.me", PASSWORD)).status_code == 429

    await clear_login_failures(session, "unlock.me")

    assert (await log_in(client, "Unlock.Me", PASSWORD)).status_code == 200


async def test_failures_are_forgotten_after_a_quiet_day(
    session: AsyncSession, settings: Settings
) -> None:
    now = utcnow()
    for _ in range(7):
        await record_login_failure(session, settings, login_key="quiet", client_ip=None, now=now)
    later = now + timedelta(hours=24, seconds=1)
    assert (
        await record_login_failure(session, settings, login_key="quiet", client_ip=None, now=later)
        == 1
    )


async def test_stale_counters_are_pruned(session: AsyncSession, settings: Settings) -> None:
    now = utcnow()
    await record_login_failure(session, settings, login_key="old", client_ip="10.1.1.1", now=now)
    later = now + timedelta(hours=12)
    await record_login_failure(session, settings, login_key="new", client_ip=None, now=later)

    removed = await prune_stale_throttles(session, now + timedelta(hours=24, minutes=1))

    assert removed == 2
    keys = (await session.execute(select(LoginThrottle.key))).scalars().all()
    assert keys == ["login:new"]


def test_exotic_logins_fit_the_key_column() -> None:
    assert len(login_throttle_key("\ufb03" * 64)) <= 100  # "ffi" ligatures triple in casefold
    assert login_throttle_key("abc") == "login:abc"


def test_pruning_runs_beside_the_api() -> None:
    assert prune_throttles_periodically in background_jobs()


async def test_the_background_job_prunes(
    session: AsyncSession, state: AppState, settings: Settings
) -> None:
    long_ago = utcnow() - timedelta(days=2)
    await record_login_failure(session, settings, login_key="ancient", client_ip=None, now=long_ago)
    await session.flush()

    job = asyncio.create_task(prune_throttles_periodically(state))
    for _ in range(100):
        await asyncio.sleep(0.02)
        if await throttle_failures(session, "login:ancient") is None:
            break
    job.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await job

    assert await throttle_failures(session, "login:ancient") is None
