"""The audit log API: newest first, cursor pagination, action filter, tenant isolation."""

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.models import AuditEvent
from app.audit.service import Actor, record_event
from app.core.db import Database
from app.core.permissions import PERMISSIONS, Action, Role
from app.core.state import AppState
from tests.factories import auth_headers, create_customer, create_user
from tests.users.helpers import make_tenant, new_user_body


async def test_user_changes_appear_newest_first(
    client: httpx.AsyncClient, session: AsyncSession, state: AppState
) -> None:
    tenant = await make_tenant(session, state)
    created = await client.post("/api/v1/users", json=new_user_body(), headers=tenant.headers)
    user_id = created.json()["id"]
    await client.post(f"/api/v1/users/{user_id}/disable", headers=tenant.headers)
    response = await client.get("/api/v1/audit-events", headers=tenant.headers)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    items = response.json()["items"]
    assert [item["action"] for item in items] == [
        "user.disabled",
        "invitation.sent",
        "user.created",
    ]
    newest = items[0]
    assert newest["actor_id"] == tenant.admin.id
    assert newest["actor_login"] == tenant.admin.login
    assert newest["target_type"] == "user"
    assert newest["target_id"] == str(user_id)
    assert newest["client_ip"] == "127.0.0.1"
    assert newest["details"] == {"from": "invited", "to": "disabled"}
    assert [item["id"] for item in items] == sorted((item["id"] for item in items), reverse=True)


async def test_pages_filter_and_isolation(
    client: httpx.AsyncClient, session: AsyncSession, state: AppState
) -> None:
    tenant = await make_tenant(session, state)
    other = await make_tenant(session, state)
    actor = Actor(tenant.admin.id, tenant.admin.login)
    for number in range(75):
        action = "login.failed" if number % 3 == 0 else "login.succeeded"
        await record_event(
            session, action, customer_id=tenant.customer.id, actor=actor, details={"n": number}
        )
        await record_event(session, action, customer_id=other.customer.id, details={"n": -1})
    await record_event(session, "system.started", customer_id=None)
    await session.flush()

    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 20, **({"cursor": cursor} if cursor else {})}
        body = (
            await client.get("/api/v1/audit-events", params=params, headers=tenant.headers)
        ).json()
        seen.extend(item["details"]["n"] for item in body["items"])
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 4
    assert seen == list(range(74, -1, -1))

    failed = await client.get(
        "/api/v1/audit-events",
        params={"action": "login.failed", "limit": 200},
        headers=tenant.headers,
    )
    assert [item["details"]["n"] for item in failed.json()["items"]] == list(range(72, -1, -3))

    theirs = await client.get("/api/v1/audit-events", params={"limit": 200}, headers=other.headers)
    assert {item["details"]["n"] for item in theirs.json()["items"]} == {-1}


async def test_cursor_must_match_the_filter(
    client: httpx.AsyncClient, session: AsyncSession, state: AppState
) -> None:
    tenant = await make_tenant(session, state)
    for _ in range(3):
        await record_event(session, "login.failed", customer_id=tenant.customer.id)
    await session.flush()
    first = await client.get("/api/v1/audit-events", params={"limit": 1}, headers=tenant.headers)
    cursor = first.json()["next_cursor"]
    response = await client.get(
        "/api/v1/audit-events",
        params={"limit": 1, "cursor": cursor, "action": "login.failed"},
        headers=tenant.headers,
    )
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_cursor"


@pytest.mark.parametrize(
    "params",
    [
        {"cursor": "garbage!"},
        {"cursor": "e30"},
        {"cursor": "eyJhIjpudWxsLCJpIjoiMSJ9"},  # {"a":null,"i":"1"}
        {"limit": 0},
        {"limit": 201},
        {"action": "DROP TABLE"},
        {"action": "x" * 65},
    ],
)
async def test_bad_parameters(
    client: httpx.AsyncClient, session: AsyncSession, state: AppState, params: dict[str, object]
) -> None:
    tenant = await make_tenant(session, state)
    response = await client.get("/api/v1/audit-events", params=params, headers=tenant.headers)
    assert response.status_code in (400, 422)
    assert response.json()["code"] in ("invalid_cursor", "validation_error")


@pytest.mark.parametrize(
    "role", [role for role in Role if Action.READ_AUDIT not in PERMISSIONS[role]]
)
async def test_roles_without_audit_access(
    client: httpx.AsyncClient, session: AsyncSession, state: AppState, role: Role
) -> None:
    tenant = await make_tenant(session, state)
    user = await create_user(session, state, tenant.customer, role=role)
    response = await client.get(
        "/api/v1/audit-events", headers=await auth_headers(session, state, user)
    )
    assert response.status_code == 403


async def test_anonymous(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/v1/audit-events")).status_code == 401


async def test_an_event_commits_or_rolls_back_with_its_transaction(
    database: Database, session: AsyncSession
) -> None:
    customer = await create_customer(session)
    await session.flush()

    async def events() -> list[AuditEvent]:
        query = select(AuditEvent).where(AuditEvent.customer_id == customer.id)
        async with database.sessionmaker() as reader:
            return list((await reader.execute(query)).scalars())

    async with database.sessionmaker() as work:
        await record_event(work, "user.created", customer_id=customer.id, target_id=1)
        await work.rollback()
    assert await events() == []

    async with database.sessionmaker() as work:
        await record_event(
            work,
            "user.created",
            customer_id=customer.id,
            actor=Actor(7, "anna"),
            target_type="user",
            target_id=42,
            client_ip="192.0.2.1",
            details={"role": "pbx_admin"},
        )
        await work.commit()
    [event] = await events()
    assert (event.action, event.actor_id, event.actor_login) == ("user.created", 7, "anna")
    assert (event.target_type, event.target_id) == ("user", "42")
    assert (event.client_ip, event.details) == ("192.0.2.1", {"role": "pbx_admin"})
    assert event.at.tzinfo is not None

    async with database.sessionmaker() as work:
        await record_event(work, "system.started", customer_id=None)
        await work.commit()
    async with database.sessionmaker() as reader:
        query = select(AuditEvent).where(AuditEvent.action == "system.started")
        system = (await reader.execute(query)).scalars().one()
    assert (system.actor_id, system.actor_login, system.details) == (None, "system", {})
