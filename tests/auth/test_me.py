"""The own profile (GET/PATCH /me), the password change and the role catalogue."""

from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.state import AppState
from app.users.models import UserAccount
from tests.auth.helpers import audit_actions, bearer, log_in, mails_to, tokens_of
from tests.factories import PASSWORD, auth_headers, create_customer, create_user

NEW_PASSWORD = "a completely new passphrase 7"


@pytest.fixture
async def user(session: AsyncSession, state: AppState) -> UserAccount:
    customer = await create_customer(session)
    return await create_user(
        session, state, customer, login="Erika.M", first_name="Erika", last_name="Mustermann"
    )


@pytest.fixture
async def headers(session: AsyncSession, state: AppState, user: UserAccount) -> dict[str, str]:
    return await auth_headers(session, state, user)


async def patch_me(
    client: httpx.AsyncClient, headers: dict[str, str], body: dict[str, Any]
) -> httpx.Response:
    return await client.patch("/api/v1/me", headers=headers, json=body)


async def test_get_me_needs_a_token(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/me")
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"


async def test_patch_names_phones_and_language(
    client: httpx.AsyncClient, session: AsyncSession, headers: dict[str, str], user: UserAccount
) -> None:
    response = await patch_me(
        client,
        headers,
        {
            "first_name": "  Eri ",
            "phone": "0221 1234567",
            "mobile": "+49 171 1234567",
            "language": "en",
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["first_name"], body["phone"], body["mobile"], body["language"]) == (
        "Eri",
        "+492211234567",
        "+491711234567",
        "en",
    )
    assert body["version"] == 2
    assert response.headers["cache-control"] == "no-store"
    assert "user.updated" in await audit_actions(session, user.id)

    cleared = await patch_me(client, headers, {"phone": None})
    assert cleared.json()["phone"] is None

    unchanged = await patch_me(client, headers, {})
    assert unchanged.json()["version"] == cleared.json()["version"]


@pytest.mark.parametrize(
    "body",
    [
        {"role": "customer_portal_admin"},
        {"status": "active"},
        {"first_name": None},
        {"language": None},
        {"first_name": ""},
        {"first_name": "x" * 101},
        {"last_name": "Evil\r\nBcc: victim@example.com"},
        {"phone": "not a number"},
        {"language": "fr"},
        {"login": "a b"},
        {"login": "ab"},
        {"email": "not-an-email"},
        {"current_password": "x" * 1025},
    ],
)
async def test_patch_me_refuses_bad_input(
    client: httpx.AsyncClient, headers: dict[str, str], body: dict[str, Any]
) -> None:
    response = await patch_me(client, headers, body)
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "validation_error"


async def test_login_and_email_need_the_current_password(
    client: httpx.AsyncClient, session: AsyncSession, headers: dict[str, str], user: UserAccount
) -> None:
    missing = await patch_me(client, headers, {"login": "Erika.New"})
    assert missing.status_code == 422
    assert missing.json()["code"] == "current_password_required"

    wrong = await patch_me(
        client, headers, {"email": "new@example.com", "current_password": "wrong password"}
    )
    assert wrong.status_code == 403
    assert wrong.json()["code"] == "current_password_invalid"

    ok = await patch_me(
        client,
        headers,
        {"login": "Erika.New", "email": "erika@example.org", "current_password": PASSWORD},
    )
    assert ok.status_code == 200, ok.text
    assert (ok.json()["login"], ok.json()["email"]) == ("Erika.New", "erika@example.org")
    assert (await log_in(client, "erika.new")).status_code == 200
    assert (await log_in(client, "Erika.M")).status_code == 401

    # Sending the unchanged value needs no password.
    same = await patch_me(client, headers, {"login": "Erika.New", "first_name": "Erika"})
    assert same.status_code == 200


async def test_a_taken_login_answers_409(
    client: httpx.AsyncClient,
    session: AsyncSession,
    state: AppState,
    headers: dict[str, str],
    user: UserAccount,
) -> None:
    other_customer = await create_customer(session)
    await create_user(session, state, other_customer, login="Taken.Login")

    response = await patch_me(
        client, headers, {"login": "TAKEN.login", "current_password": PASSWORD}
    )

    assert response.status_code == 409
    assert response.json()["code"] == "login_taken"
    await session.refresh(user)
    assert user.login == "Erika.M"


async def test_wrong_current_passwords_are_throttled(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    body = {"current_password": "wrong password", "new_password": NEW_PASSWORD}
    for _ in range(5):
        response = await client.post("/api/v1/me/password", headers=headers, json=body)
        assert response.status_code == 403
    response = await client.post("/api/v1/me/password", headers=headers, json=body)
    assert response.status_code == 429
    assert "retry-after" in response.headers


async def test_password_change_ends_the_other_sessions_only(
    client: httpx.AsyncClient, session: AsyncSession, user: UserAccount
) -> None:
    mine = await tokens_of(client, "Erika.M")
    other = await tokens_of(client, "Erika.M")

    response = await client.post(
        "/api/v1/me/password",
        headers=bearer(mine["access_token"]),
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
    )

    assert response.status_code == 204, response.text
    assert (await client.get("/api/v1/me", headers=bearer(mine["access_token"]))).status_code == 200
    refreshed = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": mine["refresh_token"]}
    )
    assert refreshed.status_code == 200
    assert (
        await client.get("/api/v1/me", headers=bearer(other["access_token"]))
    ).status_code == 401
    assert (
        await client.post("/api/v1/auth/refresh", json={"refresh_token": other["refresh_token"]})
    ).status_code == 401
    assert (await log_in(client, "Erika.M")).status_code == 401
    assert (await log_in(client, "Erika.M", NEW_PASSWORD)).status_code == 200
    assert [mail.kind for mail in await mails_to(session, user.id)] == ["password_changed"]
    assert "password.changed" in await audit_actions(session, user.id)


@pytest.mark.parametrize(
    ("new_password", "code"),
    [
        ("fourteen chars", "password_policy"),
        ("x" * 129, "password_policy"),
        ("x" * 1025, "validation_error"),
        ("my login is erika.m, ok?", "password_policy"),
        ("Mustermann rules the world", "password_policy"),
        ("friend of emily", "password_policy"),
        ("welcome to e:service portal", "password_policy"),
    ],
)
async def test_password_change_applies_the_policy(
    client: httpx.AsyncClient, headers: dict[str, str], new_password: str, code: str
) -> None:
    response = await client.post(
        "/api/v1/me/password",
        headers=headers,
        json={"current_password": PASSWORD, "new_password": new_password},
    )
    assert response.status_code == 422
    assert response.json()["code"] == code
    if code == "password_policy":
        assert response.json()["errors"][0]["loc"] == ["body", "new_password"]


async def test_password_change_needs_the_right_current_password(
    client: httpx.AsyncClient, headers: dict[str, str], session: AsyncSession, user: UserAccount
) -> None:
    response = await client.post(
        "/api/v1/me/password",
        headers=headers,
        json={"current_password": "not my password", "new_password": NEW_PASSWORD},
    )
    assert response.status_code == 403
    assert (await log_in(client, "Erika.M")).status_code == 200
    assert await mails_to(session, user.id) == []


@pytest.mark.parametrize(
    "body",
    [
        {"new_password": NEW_PASSWORD},
        {"current_password": PASSWORD},
        {"current_password": PASSWORD, "new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
    ],
)
async def test_password_change_bad_requests(
    client: httpx.AsyncClient, headers: dict[str, str], body: dict[str, str]
) -> None:
    response = await client.post("/api/v1/me/password", headers=headers, json=body)
    assert response.status_code == 422


async def test_role_catalogue(client: httpx.AsyncClient, headers: dict[str, str]) -> None:
    anonymous = await client.get("/api/v1/roles")
    assert anonymous.status_code == 401

    response = await client.get("/api/v1/roles", headers=headers)

    assert response.status_code == 200
    items = {item["role"]: item for item in response.json()["items"]}
    assert set(items) == {"customer_portal_admin", "pbx_admin", "customer_accounting"}
    assert items["pbx_admin"]["labels"] == {
        "de": "Administrator Telefonanlage",
        "en": "PBX administrator",
    }
    assert "pbx.open" in items["pbx_admin"]["actions"]
    assert "pbx.open" not in items["customer_portal_admin"]["actions"]
