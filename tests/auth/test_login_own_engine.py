"""Login through an app with its own engine, as `eservice serve` runs it (not a test's
connection in a rolled-back transaction): on PostgreSQL the read before the hash runs in
AUTOCOMMIT, and the pooled connection comes back to ordinary transactions."""

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.config import Settings
from app.main import create_app
from tests.auth.helpers import log_in, throttle_failures
from tests.factories import create_customer, create_user


@pytest.mark.committing
async def test_login_and_throttling_with_the_apps_own_engine(
    settings: Settings, committing_engine: AsyncEngine
) -> None:
    app = create_app(settings.model_copy(update={"database_pool_size": 1}), run_background=False)
    state = app.state.eservice
    try:
        async with state.database.sessionmaker.begin() as session:
            customer = await create_customer(session)
            user = await create_user(session, state, customer, login="own.engine")
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            assert (await log_in(client, user.login)).status_code == 200
            for _ in range(5):
                assert (
                    await log_in(client, user.login, "not the password at all")
                ).status_code == 401
            throttled = await log_in(client, user.login)
            assert throttled.status_code == 429
            assert int(throttled.headers["retry-after"]) > 0
        async with state.database.sessionmaker() as session:
            assert await throttle_failures(session, "login:own.engine") == 5
            # The pooled connection is back in ordinary transactions: a rollback undoes.
            await session.execute(text("DELETE FROM login_throttles"))
            await session.rollback()
            assert await throttle_failures(session, "login:own.engine") == 5
    finally:
        await state.database.dispose()
