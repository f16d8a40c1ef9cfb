"""Login: success, one answer for every failure, rehashing, audit events, the OAuth2 form."""

import asyncio
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.models import AuditEvent
from app.auth.models import AuthSession
from app.core.clock import utcnow
from app.core.config import Settings
from app.core.security import PasswordHasher
from app.core.state import AppState
from app.users.models import UserAccount
from app.users.status import UserStatus
from tests.auth.helpers import audit_actions, bearer, log_in
from tests.factories import PASSWORD, create_customer, create_user


async def test_login_succeeds_and_the_token_works(
    client: httpx.AsyncClient, session: AsyncSession, state: AppState
) -> None:
    customer = await create_customer(session)
    user = await create_user(session, state, customer, login="Admin.Telefonanlage1")

    response = await log_in(client, "admin.TELEFONANLAGE1")  # logins are case-insensitive

    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 600
    assert body["refresh_token"]
    assert body["access_token"]
    assert body["user"]["id"] == user.id
    assert body["user"]["login"] == "Admin.Telefonanlage1"
    assert body["user"]["last_login_at"] is not None
    assert "password_hash" not in body["user"]
    me = await client.get("/api/v1/me", headers=bearer(body["access_token"]))
    assert me.status_code == 200
    assert me.json()["login"] == "Admin.Telefonanlage1"
    assert me.headers["cache-control"] == "no-store"

    await session.refresh(user)
    assert user.last_login_at is not None
    assert user.version == 1  # a login is no edit of the account
    event = (
        await session.execute(select(AuditEvent).where(AuditEvent.action == "login.succeeded"))
    ).scalar_one()
    assert event.actor_id == user.id
    assert (event.target_id, event.client_ip) == (str(user.id), "127.0.0.1")
    assert (event.customer_id, event.actor_login, event.target_type) == (
        customer.id,
        "Admin.Telefonanlage1",
        "user",
    )
    assert event.details == {}
    stored = (
        await session.execute(select(AuthSession).where(AuthSession.user_id == user.id))
    ).scalar_one()
    assert (stored.client_ip, stored.user_agent, stored.refresh_count) == (
        "127.0.0.1",
        f"python-httpx/{httpx.__version__}",
        0,
    )
    assert stored.revoked_at is None
    assert stored.expires_at - stored.created_at == timedelta(hours=12)
    assert stored.authenticated_at == stored.created_at


async def test_token_endpoint_takes_the_oauth2_form(
    client: httpx.AsyncClient, session: AsyncSession, state: AppState
) -> None:
    customer = await create_customer(session)
    await create_user(session, state, customer, login="form.user")

    ok = await client.post(
        "/api/v1/auth/token",
        data={"grant_type": "password", "username": "form.user", "password": PASSWORD},
    )
    wrong = await client.post(
        "/api/v1/auth/token", data={"username": "form.user", "password": "nope"}
    )
    bad_grant = await client.post(
        "/api/v1/auth/token",
        data={"grant_type": "client_credentials", "username": "form.user", "password": PASSWORD},
    )

    assert ok.status_code == 200
    assert ok.json()["token_type"] == "bearer"
    assert wrong.status_code == 401
    assert wrong.json()["code"] == "invalid_credentials"
    assert bad_grant.status_code == 422


def test_openapi_declares_the_oauth2_password_flow(app: FastAPI) -> None:
    schemes = app.openapi()["components"]["securitySchemes"]
    flows = [scheme["flows"] for scheme in schemes.values() if scheme["type"] == "oauth2"]
    assert flows == [{"password": {"scopes": {}, "tokenUrl": "/api/v1/auth/token"}}]


@pytest.mark.parametrize(
    ("case", "status", "password", "expires_in"),
    [
        ("wrong password", UserStatus.ACTIVE, PASSWORD, None),
        ("unknown login", None, PASSWORD, None),
        ("disabled", UserStatus.DISABLED, PASSWORD, None),
        ("locked", UserStatus.LOCKED, PASSWORD, None),
        ("invited, no password", UserStatus.INVITED, None, None),
        ("planned end passed", UserStatus.ACTIVE, PASSWORD, timedelta(days=-1)),
    ],
)
async def test_every_failure_gives_the_same_answer(
    client: httpx.AsyncClient,
    session: AsyncSession,
    state: AppState,
    case: str,
    status: UserStatus | None,
    password: str | None,
    expires_in: timedelta | None,
) -> None:
    customer = await create_customer(session)
    if status is not None:
        await create_user(
            session,
            state,
            customer,
            login="someone",
            status=status,
            password=password,
            expires_at=utcnow() + expires_in if expires_in else None,
        )
    typed = "wrong password, long enough" if case == "wrong password" else PASSWORD

    response = await log_in(client, "someone", typed)

    assert response.status_code == 401, case
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json() == {
        "type": "https://eservice.example/problems/invalid_credentials",
        "title": "Login failed",
        "status": 401,
        "detail": "The login ID or the password is wrong.",
        "code": "invalid_credentials",
    }
    assert await audit_actions(session) == ["login.failed"]


async def test_unknown_login_costs_a_hash_check(
    client: httpx.AsyncClient, state: AppState, monkeypatch: pytest.MonkeyPatch
) -> None:
    context = state.hasher._context
    checked: list[str] = []
    original = context.verify

    def spy(secret: str, hashed: str) -> bool:
        checked.append(hashed)
        return bool(original(secret, hashed))

    monkeypatch.setattr(context, "verify", spy)

    response = await log_in(client, "nobody.here")

    assert response.status_code == 401
    assert checked == [await state.hasher._dummy_hash()]
    assert checked[0].startswith("$argon2id$")


async def test_login_upgrades_an_outdated_hash(
    client: httpx.AsyncClient, session: AsyncSession, state: AppState, settings: Settings
) -> None:
    customer = await create_customer(session)
    user = await create_user(session, state, customer, login="old.hash", password=None)
    old = PasswordHasher(settings.model_copy(update={"argon2_memory_cost": 2048}))
    user.password_hash = await old.hash(PASSWORD)
    await session.flush()

    assert (await log_in(client, "old.hash")).status_code == 200

    await session.refresh(user)
    assert user.password_hash is not None
    assert "m=1024" in user.password_hash
    assert (await log_in(client, "old.hash")).status_code == 200


async def test_failed_login_is_audited_with_ip(
    client: httpx.AsyncClient, session: AsyncSession, state: AppState
) -> None:
    customer = await create_customer(session)
    user = await create_user(session, state, customer, login="audited")

    await log_in(client, "audited", "definitely not the password")

    event = (await session.execute(select(AuditEvent))).scalar_one()
    assert event.action == "login.failed"
    assert (event.customer_id, event.target_id, event.client_ip) == (
        customer.id,
        str(user.id),
        "127.0.0.1",
    )
    assert event.actor_id is None
    assert event.details == {"reason": "wrong_password", "consecutive_failures": 1}


@pytest.mark.parametrize(
    "body",
    [
        {"login": "x"},
        {"password": "x"},
        {"login": "x", "password": "y", "remember": True},
        {"login": "x" * 65, "password": "y"},
        {"login": "a\r\nb", "password": "y"},
        {"login": "x", "password": "y" * 1025},
        {"login": "", "password": "y"},
        {"login": 5, "password": "y"},
    ],
)
async def test_bad_login_requests_are_refused(
    client: httpx.AsyncClient, body: dict[str, object]
) -> None:
    response = await client.post("/api/v1/auth/login", json=body)
    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"
    assert "y" * 20 not in response.text  # no echoed password


async def test_the_user_row_is_not_version_bumped_by_login(
    client: httpx.AsyncClient, session: AsyncSession, state: AppState
) -> None:
    customer = await create_customer(session)
    user = await create_user(session, state, customer, login="twice")
    first = await log_in(client, "twice")
    second = await log_in(client, "twice")
    assert first.status_code == second.status_code == 200
    version = (
        await session.execute(select(UserAccount.version).where(UserAccount.id == user.id))
    ).scalar_one()
    assert version == 1


@pytest.mark.parametrize("password", ["\x00" * 20, "pass\x00word with a nul", "\u202e" * 16])
async def test_odd_passwords_are_just_wrong(
    client: httpx.AsyncClient, session: AsyncSession, state: AppState, password: str
) -> None:
    await create_user(session, state, await create_customer(session), login="odd")
    response = await log_in(client, "odd", password)
    assert response.status_code == 401


@pytest.mark.committing
async def test_no_database_connection_is_held_while_the_password_is_hashed(
    app: FastAPI, client: httpx.AsyncClient, state: AppState, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A login parked in its hash leaves the database to other requests (SQLite has one
    connection per process)."""
    async with state.database.sessionmaker.begin() as session:
        customer = await create_customer(session)
        user = await create_user(session, state, customer, login="hash.waiter")
    hashing, release = asyncio.Event(), asyncio.Event()
    verify = state.hasher.verify

    async def slow_verify(password: str, hashed: str | None) -> tuple[bool, str | None]:
        hashing.set()
        await release.wait()
        return await verify(password, hashed)

    monkeypatch.setattr(state.hasher, "verify", slow_verify)
    login = asyncio.create_task(log_in(client, user.login))
    await asyncio.wait_for(hashing.wait(), 5)
    # Meanwhile a request that needs the database is answered.
    ready = await asyncio.wait_for(client.get("/readyz"), 5)
    assert ready.status_code == 200
    release.set()
    response = await asyncio.wait_for(login, 5)
    assert response.status_code == 200, response.text


def _change_after_the_hash(
    state: AppState, monkeypatch: pytest.MonkeyPatch, user_id: int, column: str, value: object
) -> None:
    """Another request sets the account's `column` while a login's password is being hashed."""
    verify = state.hasher.verify

    async def verify_then_change(password: str, hashed: str | None) -> tuple[bool, str | None]:
        result = await verify(password, hashed)
        async with state.database.sessionmaker.begin() as other:
            account = await other.get(UserAccount, user_id)
            assert account is not None
            setattr(account, column, value)
        return result

    monkeypatch.setattr(state.hasher, "verify", verify_then_change)


@pytest.mark.committing
async def test_a_password_changed_during_the_hash_does_not_let_the_old_one_in(
    client: httpx.AsyncClient, state: AppState, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with state.database.sessionmaker.begin() as session:
        customer = await create_customer(session)
        user = await create_user(session, state, customer, login="hash.changed")
    new_hash = await state.hasher.hash("an entirely new passphrase 42")
    _change_after_the_hash(state, monkeypatch, user.id, "password_hash", new_hash)
    response = await log_in(client, user.login)
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_credentials"


@pytest.mark.committing
@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("status", UserStatus.DISABLED),
        ("status", UserStatus.LOCKED),
        ("expires_at", "past"),
    ],
)
async def test_an_account_ended_during_the_hash_gets_no_session(
    client: httpx.AsyncClient,
    state: AppState,
    monkeypatch: pytest.MonkeyPatch,
    column: str,
    value: object,
) -> None:
    async with state.database.sessionmaker.begin() as session:
        customer = await create_customer(session)
        user = await create_user(session, state, customer, login=f"ended.{column}")
    value = utcnow() - timedelta(seconds=1) if value == "past" else value
    _change_after_the_hash(state, monkeypatch, user.id, column, value)
    response = await log_in(client, user.login)
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_credentials"
    async with state.database.sessionmaker() as session:
        account = await session.get(UserAccount, user.id)
        assert account is not None
        assert account.last_login_at is None
        sessions = await session.execute(select(AuthSession).where(AuthSession.user_id == user.id))
        assert sessions.first() is None
        reasons = await session.execute(
            select(AuditEvent.details).where(
                AuditEvent.action == "login.failed", AuditEvent.target_id == str(user.id)
            )
        )
        assert [details["reason"] for details in reasons.scalars()] == ["account_not_active"]
