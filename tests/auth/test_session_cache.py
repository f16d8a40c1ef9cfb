"""The cache of signed-in sessions: answers without a query, and forgets on every change."""

import asyncio
import contextlib
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import event, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.cache import ACCOUNTS, CachedSession, PrincipalCache, note_changed_user
from app.auth.sessions import CachedAuthenticator
from app.core.clock import clock, utcnow
from app.core.config import Settings
from app.core.db import Database, create_engine
from app.core.state import AppState
from app.main import create_app
from app.users.models import Account, UserAccount
from app.users.status import UserStatus
from tests.auth.helpers import log_in
from tests.conftest import postgres_only, sqlite_only
from tests.factories import auth_headers, create_customer, create_user
from tests.listening import listening_client


def cache_of(state: AppState) -> PrincipalCache:
    authenticator = state.authenticator
    assert isinstance(authenticator, CachedAuthenticator)
    return authenticator.cache


@contextlib.contextmanager
def counted_statements(database: Database) -> Iterator[list[str]]:
    statements: list[str] = []
    engine = database.bind.sync_engine

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


@pytest.fixture
def cache(state: AppState) -> PrincipalCache:
    """The app's cache, on. (On PostgreSQL it is on only while the listener runs; here every
    change goes through this process, which the in-process invalidation covers.)"""
    found = cache_of(state)
    if not found.active:
        found.activate()
    return found


async def test_a_checked_session_is_answered_without_a_query(
    client: httpx.AsyncClient,
    session: AsyncSession,
    state: AppState,
    database: Database,
    cache: PrincipalCache,
) -> None:
    user = await create_user(session, state, await create_customer(session))
    headers = await auth_headers(session, state, user)
    assert (await client.get("/api/v1/me", headers=headers)).status_code == 200
    with counted_statements(database) as statements:
        again = await client.get("/api/v1/me", headers=headers)
    assert again.status_code == 200
    assert again.json()["login"] == user.login
    assert statements == []


@pytest.mark.parametrize(
    "change",
    ["disable by flush", "bulk update of the account", "bulk update of the session", "delete"],
)
async def test_every_kind_of_change_ends_the_cached_session_at_once(
    client: httpx.AsyncClient,
    session: AsyncSession,
    state: AppState,
    cache: PrincipalCache,
    change: str,
) -> None:
    user = await create_user(session, state, await create_customer(session))
    headers = await auth_headers(session, state, user)
    assert (await client.get("/api/v1/me", headers=headers)).status_code == 200
    if change == "disable by flush":
        user.status = UserStatus.DISABLED
        await session.flush()
    elif change == "bulk update of the account":
        await session.execute(
            update(UserAccount)
            .where(UserAccount.id == user.id)
            .values(sessions_valid_from=utcnow() + timedelta(seconds=1))
            .execution_options(synchronize_session=False)
        )
    elif change == "bulk update of the session":
        await session.execute(text("UPDATE auth_sessions SET revoked_at = created_at"))
    else:
        await session.delete(user)
        await session.flush()
    response = await client.get("/api/v1/me", headers=headers)
    assert response.status_code == 401
    assert response.json()["code"] == "unauthenticated"


async def test_a_login_reaches_the_users_other_cached_sessions_at_once(
    client: httpx.AsyncClient, session: AsyncSession, state: AppState, cache: PrincipalCache
) -> None:
    # A login writes direct statements, not through the ORM session; the cache hears of it
    # all the same.
    user = await create_user(session, state, await create_customer(session))
    headers = await auth_headers(session, state, user)
    before = (await client.get("/api/v1/me", headers=headers)).json()["last_login_at"]
    assert (await log_in(client, user.login)).status_code == 200
    after = (await client.get("/api/v1/me", headers=headers)).json()["last_login_at"]
    assert after is not None
    assert after != before


async def test_logout_ends_the_cached_session_at_once(
    client: httpx.AsyncClient, session: AsyncSession, state: AppState, cache: PrincipalCache
) -> None:
    user = await create_user(session, state, await create_customer(session))
    headers = await auth_headers(session, state, user)
    assert (await client.get("/api/v1/me", headers=headers)).status_code == 200
    assert (await client.post("/api/v1/auth/logout", headers=headers)).status_code == 204
    assert (await client.get("/api/v1/me", headers=headers)).status_code == 401


async def test_cached_sessions_still_end_on_time(
    client: httpx.AsyncClient, session: AsyncSession, state: AppState, cache: PrincipalCache
) -> None:
    user = await create_user(session, state, await create_customer(session))
    user.expires_at = utcnow() + timedelta(minutes=5)
    await session.flush()
    headers = await auth_headers(session, state, user)
    assert (await client.get("/api/v1/me", headers=headers)).status_code == 200
    clock.advance(timedelta(minutes=6))  # past the planned end (the token is still valid)
    assert (await client.get("/api/v1/me", headers=headers)).status_code == 401


def _entry(user_id: int) -> CachedSession:
    now = utcnow()
    account = Account(
        id=user_id,
        customer_id=1,
        login=f"user.{user_id}",
        role="pbx_admin",  # type: ignore[arg-type]
        status=UserStatus.ACTIVE,
        first_name="A",
        last_name="B",
        email="a@example.com",
        phone=None,
        mobile=None,
        language="de",  # type: ignore[arg-type]
        expires_at=None,
        last_login_at=None,
        created_at=now,
        updated_at=now,
        version=1,
    )
    return CachedSession(account, now + timedelta(hours=1), now + timedelta(minutes=30))


def test_a_read_that_a_change_overtook_is_not_kept() -> None:
    cache = PrincipalCache(active=True)
    generation = cache.generation
    cache.forget_user(7)  # a change committed while the session was being read
    cache.remember_session("s1", _entry(7), generation)
    assert cache.session("s1") is None
    cache.remember_session("s1", _entry(7), cache.generation)
    assert cache.session("s1") is not None


def test_forgetting_a_user_keeps_the_others() -> None:
    cache = PrincipalCache(active=True)
    for session_id, user_id in (("a", 1), ("b", 1), ("c", 2)):
        cache.remember_session(session_id, _entry(user_id), cache.generation)
    cache.forget_user(1)
    assert (cache.session("a"), cache.session("b")) == (None, None)
    assert cache.session("c") is not None


def test_an_inactive_cache_neither_answers_nor_keeps() -> None:
    cache = PrincipalCache(active=False)
    cache.remember_session("s1", _entry(1), cache.generation)
    assert cache.session("s1") is None
    cache.activate()
    assert cache.session("s1") is None
    cache.remember_session("s1", _entry(1), cache.generation)
    assert cache.session("s1") is not None
    cache.deactivate()
    assert cache.session("s1") is None


async def _disable_from_another_process(settings: Settings, user_id: int) -> None:
    """Another process: its own engine, plain SQL, nothing this process could notice."""
    other = create_engine(settings)
    try:
        async with other.begin() as connection:
            await connection.execute(
                text("UPDATE user_accounts SET status = 'disabled' WHERE id = :id"),
                {"id": user_id},
            )
    finally:
        await other.dispose()


def test_a_session_is_checked_again_once_its_entry_is_old(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cache = PrincipalCache(active=True, max_age=5.0)
    moment = [1000.0]
    monkeypatch.setattr("app.core.changes.time.monotonic", lambda: moment[0])
    cache.remember_session("s1", _entry(1), cache.generation)
    moment[0] += 4.9
    assert cache.session("s1") is not None
    moment[0] += 0.1
    assert cache.session("s1") is None  # the next request asks the database


@sqlite_only("on PostgreSQL the listener hears of every change")
@pytest.mark.committing
async def test_a_change_the_process_cannot_hear_of_takes_effect_within_the_max_age(
    settings: Settings, committing_engine: object
) -> None:
    """SQLite: another process (its own engine, plain SQL) disables the account."""
    app = create_app(
        settings.model_copy(update={"auth_cache_max_age": timedelta(milliseconds=200)}),
        run_background=False,
    )
    state = app.state.eservice
    try:
        async with state.database.sessionmaker.begin() as session:
            user = await create_user(session, state, await create_customer(session))
            headers = await auth_headers(session, state, user)
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            assert (await client.get("/api/v1/me", headers=headers)).status_code == 200
            await _disable_from_another_process(settings, user.id)
            # Still answered from memory at once (the change was not heard of) ...
            assert (await client.get("/api/v1/me", headers=headers)).status_code == 200
            await asyncio.sleep(0.25)
            # ... and checked again once the entry is older than the max age.
            assert (await client.get("/api/v1/me", headers=headers)).status_code == 401
    finally:
        await state.database.dispose()


def test_the_cache_is_bounded() -> None:
    cache = PrincipalCache(active=True, max_entries=3)
    for number in range(5):
        cache.remember_session(f"s{number}", _entry(number), cache.generation)
        cache.remember_claims(f"t{number}", {"sub": str(number)})
    assert len(cache._entries) <= 3
    assert len(cache._claims) <= 3
    assert cache.session("s4") is not None


async def test_without_the_cache_setting_every_request_queries(
    settings: Settings, database: Database, session: AsyncSession
) -> None:
    app = create_app(settings.model_copy(update={"auth_cache": False}), database)
    state: AppState = app.state.eservice
    assert not cache_of(state).active
    user = await create_user(session, state, await create_customer(session))
    headers = await auth_headers(session, state, user)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        assert (await client.get("/api/v1/me", headers=headers)).status_code == 200
        with counted_statements(database) as statements:
            assert (await client.get("/api/v1/me", headers=headers)).status_code == 200
    assert statements


@postgres_only()
@pytest.mark.committing
async def test_a_change_by_another_process_reaches_the_cache(
    settings: Settings, database: Database
) -> None:
    """PostgreSQL: a change committed elsewhere arrives by NOTIFY and ends the session."""
    app = create_app(settings, database, run_background=False)
    state: AppState = app.state.eservice
    cache = cache_of(state)
    async with listening_client(app, cache) as client:
        async with state.database.sessionmaker.begin() as session:
            user = await create_user(session, state, await create_customer(session))
            headers = await auth_headers(session, state, user)
        assert (await client.get("/api/v1/me", headers=headers)).status_code == 200
        assert (await client.get("/api/v1/me", headers=headers)).status_code == 200

        await _disable_from_another_process(settings, user.id)
        statuses = []
        for _ in range(100):
            statuses.append((await client.get("/api/v1/me", headers=headers)).status_code)
            if statuses[-1] == 401:
                break
            await asyncio.sleep(0.02)
        assert statuses[-1] == 401, statuses
    assert not cache.active  # the listener stopped with the app


async def test_a_rolled_back_change_is_not_forgotten_again_at_the_next_commit(
    session: AsyncSession, cache: PrincipalCache
) -> None:
    await create_customer(session)  # the session's transaction has begun
    note_changed_user(session.sync_session, 42)
    assert session.sync_session.info[ACCOUNTS.name] == {42}
    await session.rollback()
    assert ACCOUNTS.name not in session.sync_session.info
