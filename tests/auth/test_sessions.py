"""Sessions: refresh rotation and replay, logout, idle and absolute timeouts, revocation."""

from datetime import timedelta

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.clock import clock, utcnow
from app.core.state import AppState
from app.users.status import StatusEvent, apply_event
from tests.auth.helpers import audit_actions, bearer, tokens_of
from tests.factories import create_customer, create_user


async def _user(session: AsyncSession, state: AppState, login: str = "sessions.user") -> None:
    await create_user(session, state, await create_customer(session), login=login)


async def refresh(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post("/api/v1/auth/refresh", json={"refresh_token": token})


async def me(client: httpx.AsyncClient, access_token: str) -> int:
    return (await client.get("/api/v1/me", headers=bearer(access_token))).status_code


async def test_refresh_rotates_and_a_replay_ends_the_session(
    client: httpx.AsyncClient, session: AsyncSession, state: AppState
) -> None:
    await _user(session, state)
    first = await tokens_of(client, "sessions.user")

    rotated = await refresh(client, first["refresh_token"])
    assert rotated.status_code == 200
    assert rotated.headers["cache-control"] == "no-store"
    second = rotated.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert second["user"]["login"] == "sessions.user"
    assert await me(client, second["access_token"]) == 200

    replay = await refresh(client, first["refresh_token"])
    assert replay.status_code == 401
    assert replay.json()["code"] == "unauthenticated"
    # The thief's replay killed the whole session: the legitimate pair is dead too.
    assert await me(client, second["access_token"]) == 401
    assert (await refresh(client, second["refresh_token"])).status_code == 401
    assert "session.refresh_reused" in await audit_actions(session)


@pytest.mark.parametrize(
    "token",
    ["", "garbage", "x" * 201, "0" * 32 + ".guess", "." * 50, "\x00" * 32 + ".x", "Z" * 32],
)
async def test_malformed_refresh_tokens_are_refused(client: httpx.AsyncClient, token: str) -> None:
    response = await refresh(client, token)
    assert response.status_code in (401, 422)
    assert response.headers["content-type"] == "application/problem+json"


async def test_refresh_request_forbids_unknown_fields(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": "a.b", "access_token": "c"}
    )
    assert response.status_code == 422


async def test_logout_kills_the_access_token_at_once(
    client: httpx.AsyncClient, session: AsyncSession, state: AppState
) -> None:
    await _user(session, state)
    pair = await tokens_of(client, "sessions.user")
    other = await tokens_of(client, "sessions.user")

    response = await client.post("/api/v1/auth/logout", headers=bearer(pair["access_token"]))

    assert response.status_code == 204
    assert await me(client, pair["access_token"]) == 401
    assert (await refresh(client, pair["refresh_token"])).status_code == 401
    assert await me(client, other["access_token"]) == 200  # only this session ended
    assert (await client.post("/api/v1/auth/logout")).status_code == 401


async def test_a_disabled_accounts_token_fails_at_once(
    client: httpx.AsyncClient, session: AsyncSession, state: AppState
) -> None:
    customer = await create_customer(session)
    user = await create_user(session, state, customer, login="to.disable")
    pair = await tokens_of(client, "to.disable")
    assert await me(client, pair["access_token"]) == 200

    apply_event(user, StatusEvent.DISABLE, utcnow())
    await session.flush()

    assert await me(client, pair["access_token"]) == 401
    assert (await refresh(client, pair["refresh_token"])).status_code == 401


async def test_an_account_whose_planned_end_passed_is_signed_out(
    client: httpx.AsyncClient, session: AsyncSession, state: AppState
) -> None:
    customer = await create_customer(session)
    await create_user(
        session, state, customer, login="short.lived", expires_at=utcnow() + timedelta(minutes=5)
    )
    pair = await tokens_of(client, "short.lived")
    clock.advance(timedelta(minutes=6))
    assert await me(client, pair["access_token"]) == 401


async def test_idle_session_ends_after_thirty_minutes_without_refresh(
    client: httpx.AsyncClient, session: AsyncSession, state: AppState
) -> None:
    await _user(session, state)
    pair = await tokens_of(client, "sessions.user")

    clock.advance(timedelta(minutes=25))
    kept = await refresh(client, pair["refresh_token"])
    assert kept.status_code == 200  # a refresh within 30 min keeps the session

    clock.advance(timedelta(minutes=31))
    assert (await refresh(client, kept.json()["refresh_token"])).status_code == 401


async def test_access_token_expires_after_ten_minutes(
    client: httpx.AsyncClient, session: AsyncSession, state: AppState
) -> None:
    await _user(session, state)
    pair = await tokens_of(client, "sessions.user")
    clock.advance(timedelta(minutes=9, seconds=50))
    assert await me(client, pair["access_token"]) == 200
    clock.advance(timedelta(seconds=20))
    assert await me(client, pair["access_token"]) == 401


async def test_session_ends_twelve_hours_after_login_however_often_refreshed(
    client: httpx.AsyncClient, session: AsyncSession, state: AppState
) -> None:
    await _user(session, state)
    token = (await tokens_of(client, "sessions.user"))["refresh_token"]
    for _ in range(24):  # 24 x 29 min = 11 h 36 min
        clock.advance(timedelta(minutes=29))
        response = await refresh(client, token)
        assert response.status_code == 200
        token = response.json()["refresh_token"]
    clock.advance(timedelta(minutes=20))  # 11 h 56 min: still inside
    last = await refresh(client, token)
    assert last.status_code == 200
    access = last.json()["access_token"]
    assert await me(client, access) == 200

    clock.advance(timedelta(minutes=5))  # 12 h 01 min
    assert await me(client, access) == 401
    assert (await refresh(client, last.json()["refresh_token"])).status_code == 401
