"""The "planned until" sweep."""

import asyncio
import contextlib
from datetime import timedelta

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.clock import clock, utcnow
from app.core.state import AppState
from app.main import background_jobs
from app.users import expiry
from app.users.expiry import expire_due_accounts, run_expiry_sweep
from app.users.status import UserStatus
from tests.factories import auth_headers, create_user
from tests.users.helpers import audit_actions, make_tenant

S = UserStatus


def test_sweep_is_a_background_job() -> None:
    assert run_expiry_sweep in background_jobs()


async def test_sweep_expires_due_accounts_and_ends_sessions(
    client: httpx.AsyncClient, session: AsyncSession, state: AppState
) -> None:
    tenant = await make_tenant(session, state)
    soon = utcnow() + timedelta(hours=1)
    due = {
        status: await create_user(session, state, tenant.customer, status=status, expires_at=soon)
        for status in (S.ACTIVE, S.INVITED, S.SCHEDULED, S.LOCKED, S.DISABLED)
    }
    later = await create_user(
        session, state, tenant.customer, expires_at=utcnow() + timedelta(days=30)
    )
    never = await create_user(session, state, tenant.customer)
    assert await expire_due_accounts(session) == 0
    clock.advance(timedelta(hours=1, seconds=1))
    headers = await auth_headers(session, state, due[S.ACTIVE])
    assert await expire_due_accounts(session) == 4
    assert await expire_due_accounts(session) == 0
    for status, user in due.items():
        await session.refresh(user)
        expected = S.DISABLED if status == S.DISABLED else S.EXPIRED
        assert user.status == expected
        assert ("user.expired" in await audit_actions(session, user.id)) == (status != S.DISABLED)
    for user in (later, never):
        await session.refresh(user)
        assert user.status == S.ACTIVE
    assert (await client.get("/api/v1/audit-events", headers=headers)).status_code == 401


async def test_expired_account_cannot_use_its_token_even_before_the_sweep(
    client: httpx.AsyncClient, session: AsyncSession, state: AppState
) -> None:
    tenant = await make_tenant(session, state)
    tenant.admin.expires_at = utcnow() + timedelta(minutes=5)
    await session.flush()
    assert (await client.get("/api/v1/users", headers=tenant.headers)).status_code == 200
    clock.advance(timedelta(minutes=6))
    assert (await client.get("/api/v1/users", headers=tenant.headers)).status_code == 401


async def test_sweep_loop_runs_and_stops(
    session: AsyncSession, state: AppState, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant = await make_tenant(session, state)
    user = await create_user(
        session, state, tenant.customer, expires_at=utcnow() + timedelta(seconds=1)
    )
    await session.commit()
    clock.advance(timedelta(seconds=2))
    rounds: list[int] = []
    done = asyncio.Event()
    original = expiry.sweep_once

    async def counted(app_state: AppState) -> int:
        rounds.append(await original(app_state))
        done.set()
        return rounds[-1]

    monkeypatch.setattr(expiry, "sweep_once", counted)
    task = asyncio.create_task(run_expiry_sweep(state))
    await asyncio.wait_for(done.wait(), timeout=10)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert rounds == [1]
    await session.refresh(user)
    assert user.status == S.EXPIRED
