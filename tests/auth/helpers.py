"""Small helpers shared by the auth tests."""

from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.models import AuditEvent
from app.auth.models import LoginThrottle
from app.outbox.models import OutboxMessage
from tests.factories import PASSWORD


async def log_in(client: httpx.AsyncClient, login: str, password: str = PASSWORD) -> httpx.Response:
    return await client.post("/api/v1/auth/login", json={"login": login, "password": password})


async def tokens_of(client: httpx.AsyncClient, login: str, password: str = PASSWORD) -> Any:
    response = await log_in(client, login, password)
    assert response.status_code == 200, response.text
    return response.json()


def bearer(access_token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {access_token}"}


def client_from(app: FastAPI, ip: str) -> httpx.AsyncClient:
    """A client whose requests come from `ip`."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=(ip, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def audit_actions(session: AsyncSession, target_id: int | None = None) -> list[str]:
    query = select(AuditEvent.action).order_by(AuditEvent.id)
    if target_id is not None:
        query = query.where(AuditEvent.target_id == str(target_id))
    return list((await session.execute(query)).scalars())


async def mails_to(session: AsyncSession, user_id: int) -> list[OutboxMessage]:
    query = select(OutboxMessage).where(OutboxMessage.user_id == user_id)
    return list((await session.execute(query.order_by(OutboxMessage.id))).scalars())


async def throttle_failures(session: AsyncSession, key: str) -> int | None:
    query = select(LoginThrottle.failures).where(LoginThrottle.key == key)
    return (await session.execute(query)).scalar_one_or_none()
