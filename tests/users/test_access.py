"""Who may manage users: only portal admins, and only their own customer's users."""

from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.permissions import PERMISSIONS, Action, Role
from app.core.state import AppState
from app.users.status import UserStatus
from tests.factories import auth_headers, create_user
from tests.users.helpers import audit_actions, make_tenant, new_user_body

# Every user-management operation: (method, path template, JSON body).
OPERATIONS: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "/api/v1/users/{id}", None),
    ("PATCH", "/api/v1/users/{id}", {"first_name": "Mallory"}),
    ("DELETE", "/api/v1/users/{id}", None),
    ("POST", "/api/v1/users/{id}/disable", None),
    ("POST", "/api/v1/users/{id}/enable", None),
    ("POST", "/api/v1/users/{id}/unlock", None),
    ("POST", "/api/v1/users/{id}/invitation", None),
]
COLLECTION: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "/api/v1/users", None),
    ("POST", "/api/v1/users", new_user_body(login="intruder.1")),
]
NOT_MANAGERS = [role for role in Role if Action.MANAGE_USERS not in PERMISSIONS[role]]
TARGET_STATUSES = [UserStatus.INVITED, UserStatus.LOCKED, UserStatus.DISABLED, UserStatus.ACTIVE]


def test_permission_table_has_roles_without_user_management() -> None:
    assert set(NOT_MANAGERS) == {Role.PBX_ADMIN, Role.CUSTOMER_ACCOUNTING}


@pytest.mark.parametrize("target_status", TARGET_STATUSES)
@pytest.mark.parametrize(("method", "path", "body"), OPERATIONS)
async def test_other_customers_users_are_not_found(
    client: httpx.AsyncClient,
    session: AsyncSession,
    state: AppState,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    target_status: UserStatus,
) -> None:
    tenant_a = await make_tenant(session, state)
    tenant_b = await make_tenant(session, state)
    victim = await create_user(session, state, tenant_a.customer, status=target_status)
    response = await client.request(
        method, path.format(id=victim.id), json=body, headers=tenant_b.headers
    )
    assert response.status_code == 404, response.text
    assert response.json()["code"] == "not_found"
    await session.refresh(victim)
    assert (victim.status, victim.first_name, victim.version) == (target_status, "Erika", 1)
    assert await audit_actions(session, victim.id) == []


@pytest.mark.parametrize("role", NOT_MANAGERS)
@pytest.mark.parametrize(("method", "path", "body"), OPERATIONS + COLLECTION)
async def test_roles_without_user_management_are_forbidden(
    client: httpx.AsyncClient,
    session: AsyncSession,
    state: AppState,
    role: Role,
    method: str,
    path: str,
    body: dict[str, Any] | None,
) -> None:
    tenant = await make_tenant(session, state)
    caller = await create_user(session, state, tenant.customer, role=role)
    target = await create_user(session, state, tenant.customer, status=UserStatus.INVITED)
    headers = await auth_headers(session, state, caller)
    response = await client.request(method, path.format(id=target.id), json=body, headers=headers)
    assert response.status_code == 403, response.text
    assert response.json()["code"] == "forbidden"
    await session.refresh(target)
    assert target.version == 1


@pytest.mark.parametrize(("method", "path", "body"), OPERATIONS + COLLECTION)
async def test_anonymous_is_unauthenticated(
    client: httpx.AsyncClient,
    method: str,
    path: str,
    body: dict[str, Any] | None,
) -> None:
    response = await client.request(method, path.format(id=1), json=body)
    assert response.status_code == 401
    assert response.json()["code"] == "unauthenticated"


async def test_disabled_admin_token_stops_at_once(
    client: httpx.AsyncClient, session: AsyncSession, state: AppState
) -> None:
    tenant = await make_tenant(session, state)
    second = await create_user(session, state, tenant.customer, role=Role.CUSTOMER_PORTAL_ADMIN)
    second_headers = await auth_headers(session, state, second)
    assert (await client.get("/api/v1/users", headers=second_headers)).status_code == 200
    response = await client.post(f"/api/v1/users/{second.id}/disable", headers=tenant.headers)
    assert response.status_code == 200
    assert (await client.get("/api/v1/users", headers=second_headers)).status_code == 401
    await session.refresh(second)
    assert second.status == UserStatus.DISABLED
