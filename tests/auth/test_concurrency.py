"""On PostgreSQL with real commits: concurrent failures are all counted, exactly once each."""

import asyncio

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.throttle import login_throttle_key, record_login_failure
from app.core.config import Settings
from app.core.db import Database
from app.core.state import AppState
from app.main import create_app
from app.users.models import UserAccount
from app.users.status import UserStatus
from tests.auth.helpers import mails_to, throttle_failures
from tests.conftest import postgres_only
from tests.factories import create_customer, create_user

pytestmark = [postgres_only(), pytest.mark.committing]


async def fire_wrong_logins(
    settings: Settings, database: Database, login: str, count: int
) -> list[int]:
    """`count` concurrent wrong logins; delays and the IP limit off (the counter is tested)."""
    generous = settings.model_copy(
        update={"login_failures_before_delay": 1000, "ip_failures_per_window": 1000}
    )
    app = create_app(generous, database, run_background=False)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        responses = await asyncio.gather(
            *(
                client.post(
                    "/api/v1/auth/login", json={"login": login, "password": f"wrong password {n}"}
                )
                for n in range(count)
            )
        )
    return [response.status_code for response in responses]


async def test_fifty_concurrent_wrong_logins_count_fifty(
    settings: Settings, database: Database, session: AsyncSession, state: AppState
) -> None:
    customer = await create_customer(session)
    user = await create_user(session, state, customer, login="Concurrent.Target")
    await session.commit()

    statuses = await fire_wrong_logins(settings, database, "concurrent.target", 50)

    assert statuses == [401] * 50
    async with database.sessionmaker() as check:
        assert await throttle_failures(check, login_throttle_key("concurrent.target")) == 50
        assert await throttle_failures(check, "ip:127.0.0.1") == 50
        reloaded = await check.get(UserAccount, user.id)
        assert reloaded is not None
        assert reloaded.status == UserStatus.ACTIVE


async def test_concurrent_failures_across_the_threshold_lock_once_and_mail_once(
    settings: Settings, database: Database, session: AsyncSession, state: AppState
) -> None:
    customer = await create_customer(session)
    user = await create_user(session, state, customer, login="lock.once")
    for _ in range(90):
        await record_login_failure(session, settings, login_key="lock.once", client_ip=None)
    await session.commit()

    statuses = await fire_wrong_logins(settings, database, "lock.once", 20)

    assert statuses == [401] * 20
    async with database.sessionmaker() as check:
        reloaded = await check.get(UserAccount, user.id)
        assert reloaded is not None
        assert reloaded.status == UserStatus.LOCKED
        assert [mail.kind for mail in await mails_to(check, user.id)] == ["password_reset"]
