"""Create, read, change and delete users through HTTP."""

from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.models import AuditEvent
from app.core.clock import utcnow
from app.core.state import AppState
from app.customers.models import EServiceState
from app.invitations.models import Invitation, PasswordToken
from app.outbox.models import OutboxMessage
from app.users.models import UserAccount
from tests.factories import auth_headers, create_user
from tests.users.helpers import audit_actions, count_users, make_tenant, new_user_body


async def test_create_invites_now(
    client: httpx.AsyncClient, session: AsyncSession, state: AppState
) -> None:
    tenant = await make_tenant(session, state)
    response = await client.post(
        "/api/v1/users",
        json=new_user_body(phone="0221 1234567", mobile="+49 171 1234567", language="en"),
        headers=tenant.headers,
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert response.headers["location"] == f"/api/v1/users/{body['id']}"
    assert response.headers["etag"] == f'"{body["version"]}"'
    assert body["status"] == "invited"
    assert body["login"] == "Admin.Telefonanlage1"
    assert body["phone"] == "+492211234567"
    assert body["mobile"] == "+491711234567"
    assert body["language"] == "en"
    invitation = body["invitation"]
    assert invitation["delivery"] == "pending"
    assert invitation["sent_count"] == 1
    assert invitation["expired"] is False
    assert invitation["scheduled_for"] is None
    user = await session.get(UserAccount, body["id"])
    assert user is not None
    assert user.customer_id == tenant.customer.id
    mails = (
        await session.execute(select(OutboxMessage).where(OutboxMessage.user_id == user.id))
    ).scalars()
    (mail,) = list(mails)
    assert mail.kind == "invitation"
    assert "Admin.Telefonanlage1" in mail.body_text
    assert await audit_actions(session, user.id) == ["user.created", "invitation.sent"]
    event = (
        await session.execute(select(AuditEvent).where(AuditEvent.action == "user.created"))
    ).scalar_one()
    assert event.actor_id == tenant.admin.id
    assert event.client_ip == "127.0.0.1"

    got = await client.get(response.headers["location"], headers=tenant.headers)
    assert got.status_code == 200
    assert got.json() == body


async def test_create_scheduled_sends_nothing_yet(
    client: httpx.AsyncClient, session: AsyncSession, state: AppState
) -> None:
    tenant = await make_tenant(session, state)
    later = utcnow() + timedelta(days=2)
    response = await client.post(
        "/api/v1/users",
        json=new_user_body(send_invitation_at=later.isoformat()),
        headers=tenant.headers,
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "scheduled"
    assert body["invitation"]["sent_count"] == 0
    assert body["invitation"]["delivery"] is None
    assert body["invitation"]["scheduled_for"] is not None
    assert await count_users(session, status="scheduled") == 1
    mails = await session.execute(select(OutboxMessage).where(OutboxMessage.user_id == body["id"]))
    assert list(mails.scalars()) == []
    tokens = await session.execute(select(PasswordToken).where(PasswordToken.user_id == body["id"]))
    assert list(tokens.scalars()) == []
    invitation = await session.get(Invitation, body["id"])
    assert invitation is not None
    assert invitation.scheduled_for is not None


async def test_send_at_in_the_past_invites_now(
    client: httpx.AsyncClient, session: AsyncSession, state: AppState
) -> None:
    tenant = await make_tenant(session, state)
    earlier = utcnow() - timedelta(minutes=5)
    response = await client.post(
        "/api/v1/users",
        json=new_user_body(send_invitation_at=earlier.isoformat()),
        headers=tenant.headers,
    )
    assert response.status_code == 201
    assert response.json()["status"] == "invited"


@pytest.mark.parametrize("login", ["admin.telefonanlage1", "ADMIN.TELEFONANLAGE1"])
async def test_login_taken_case_insensitively(
    client: httpx.AsyncClient, session: AsyncSession, state: AppState, login: str
) -> None:
    tenant = await make_tenant(session, state)
    first = await client.post("/api/v1/users", json=new_user_body(), headers=tenant.headers)
    assert first.status_code == 201
    second = await client.post(
        "/api/v1/users",
        json=new_user_body(login=login, email="x@example.com"),
        headers=tenant.headers,
    )
    assert second.status_code == 409
    assert second.headers["content-type"] == "application/problem+json"
    assert second.json()["code"] == "login_taken"
    assert await count_users(session, customer_id=tenant.customer.id) == 2


async def test_login_taken_across_customers(
    client: httpx.AsyncClient, session: AsyncSession, state: AppState
) -> None:
    tenant_a = await make_tenant(session, state)
    tenant_b = await make_tenant(session, state)
    assert (
        await client.post("/api/v1/users", json=new_user_body(), headers=tenant_a.headers)
    ).status_code == 201
    response = await client.post("/api/v1/users", json=new_user_body(), headers=tenant_b.headers)
    assert response.json()["code"] == "login_taken"


BAD_BODIES = [
    {"login": "ab"},
    {"login": "x" * 65},
    {"login": "with space"},
    {"login": "umlaut.ä"},
    {"login": "semi;colon"},
    {"login": "trailing\n"},
    {"expires_at": "9999-12-31T23:00:00-05:00"},
    {"role": "superuser"},
    {"first_name": ""},
    {"first_name": "   "},
    {"first_name": "x" * 101},
    {"first_name": "Eve\r\nBcc: victim@example.com"},
    {"last_name": "Null\x00Byte"},
    {"last_name": "Tab\tName"},
    {"last_name": "Zero\u200bWidth"},
    {"email": "not-an-email"},
    {"email": None},
    {"phone": "12"},
    {"phone": "0221 12"},
    {"phone": "+49 abc"},
    {"mobile": "x" * 40},
    {"language": "fr"},
    {"expires_at": "2030-01-01T00:00:00"},
    {"expires_at": "2000-01-01T00:00:00Z"},
    {"send_invitation_at": "tomorrow"},
    {"unknown_field": 1},
    {"send_invitation_at": "2099-01-02T00:00:00Z", "expires_at": "2099-01-01T00:00:00Z"},
]


@pytest.mark.parametrize("overrides", BAD_BODIES)
async def test_create_refuses_bad_input(
    client: httpx.AsyncClient, session: AsyncSession, state: AppState, overrides: dict[str, object]
) -> None:
    tenant = await make_tenant(session, state)
    response = await client.post(
        "/api/v1/users", json=new_user_body(**overrides), headers=tenant.headers
    )
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "validation_error"
    assert await count_users(session, customer_id=tenant.customer.id) == 1


@pytest.mark.parametrize("missing", ["login", "role", "first_name", "last_name", "email"])
async def test_create_requires_fields(
    client: httpx.AsyncClient, session: AsyncSession, state: AppState, missing: str
) -> None:
    tenant = await make_tenant(session, state)
    body = new_user_body()
    del body[missing]
    response = await client.post("/api/v1/users", json=body, headers=tenant.headers)
    assert response.status_code == 422
    assert any(error["loc"][-1] == missing for error in response.json()["errors"])


async def test_pending_customer_cannot_invite(
    client: httpx.AsyncClient, session: AsyncSession, state: AppState
) -> None:
    tenant = await make_tenant(session, state, EServiceState.PENDING)
    response = await client.post("/api/v1/users", json=new_user_body(), headers=tenant.headers)
    assert response.status_code == 409
    assert response.json()["code"] == "customer_pending"
    assert await count_users(session, customer_id=tenant.customer.id) == 1


async def test_patch_with_etag(
    client: httpx.AsyncClient, session: AsyncSession, state: AppState
) -> None:
    tenant = await make_tenant(session, state)
    user = await create_user(session, state, tenant.customer)
    url = f"/api/v1/users/{user.id}"
    got = await client.get(url, headers=tenant.headers)
    etag = got.headers["etag"]
    changed = await client.patch(
        url,
        json={"first_name": "Petra", "phone": "+4930123456", "role": "customer_accounting"},
        headers={**tenant.headers, "If-Match": etag},
    )
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert (body["first_name"], body["phone"], body["role"]) == (
        "Petra",
        "+4930123456",
        "customer_accounting",
    )
    assert body["version"] == got.json()["version"] + 1
    assert changed.headers["etag"] != etag
    stale = await client.patch(
        url, json={"first_name": "Late"}, headers={**tenant.headers, "If-Match": etag}
    )
    assert stale.status_code == 412
    assert stale.json()["code"] == "precondition_failed"
    await session.refresh(user)
    assert user.first_name == "Petra"
    cleared = await client.patch(url, json={"phone": None}, headers=tenant.headers)
    assert cleared.json()["phone"] is None
    assert "user.updated" in await audit_actions(session, user.id)


async def test_patch_without_change_keeps_version(
    client: httpx.AsyncClient, session: AsyncSession, state: AppState
) -> None:
    tenant = await make_tenant(session, state)
    user = await create_user(session, state, tenant.customer, first_name="Same")
    response = await client.patch(
        f"/api/v1/users/{user.id}", json={"first_name": "Same"}, headers=tenant.headers
    )
    assert response.json()["version"] == 1
    assert await audit_actions(session, user.id) == []


@pytest.mark.parametrize(
    "body",
    [
        {"first_name": None},
        {"role": None},
        {"email": "bad"},
        {"login": "newlogin"},
        {"status": "active"},
        {"expires_at": "2001-01-01T00:00:00Z"},
        {"last_name": "a\nb"},
    ],
)
async def test_patch_refuses_bad_input(
    client: httpx.AsyncClient, session: AsyncSession, state: AppState, body: dict[str, object]
) -> None:
    tenant = await make_tenant(session, state)
    user = await create_user(session, state, tenant.customer)
    response = await client.patch(f"/api/v1/users/{user.id}", json=body, headers=tenant.headers)
    assert response.status_code == 422, response.text


async def test_delete_ends_sessions(
    client: httpx.AsyncClient, session: AsyncSession, state: AppState
) -> None:
    tenant = await make_tenant(session, state)
    user = await create_user(session, state, tenant.customer)
    user_headers = await auth_headers(session, state, user)
    user_id = user.id
    response = await client.delete(f"/api/v1/users/{user_id}", headers=tenant.headers)
    assert response.status_code == 204
    assert (await client.get(f"/api/v1/users/{user_id}", headers=tenant.headers)).status_code == 404
    assert (await client.get("/api/v1/users", headers=user_headers)).status_code == 401
    session.expunge_all()
    assert await session.get(UserAccount, user_id) is None
    assert await audit_actions(session, user_id) == ["user.deleted"]


async def test_delete_with_stale_etag(
    client: httpx.AsyncClient, session: AsyncSession, state: AppState
) -> None:
    tenant = await make_tenant(session, state)
    user = await create_user(session, state, tenant.customer)
    response = await client.delete(
        f"/api/v1/users/{user.id}", headers={**tenant.headers, "If-Match": '"7"'}
    )
    assert response.status_code == 412
    # If-Match compares strongly: a weak tag of the current version does not match.
    response = await client.delete(
        f"/api/v1/users/{user.id}", headers={**tenant.headers, "If-Match": 'W/"1"'}
    )
    assert response.status_code == 412
    response = await client.delete(
        f"/api/v1/users/{user.id}", headers={**tenant.headers, "If-Match": '"9", "1"'}
    )
    assert response.status_code == 204


@pytest.mark.parametrize(
    "path", ["/api/v1/users/0", "/api/v1/users/abc", "/api/v1/users/99999999999"]
)
async def test_bad_ids(
    client: httpx.AsyncClient, session: AsyncSession, state: AppState, path: str
) -> None:
    tenant = await make_tenant(session, state)
    response = await client.get(path, headers=tenant.headers)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


async def test_unknown_user_is_404(
    client: httpx.AsyncClient, session: AsyncSession, state: AppState
) -> None:
    tenant = await make_tenant(session, state)
    response = await client.get("/api/v1/users/987654", headers=tenant.headers)
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
