"""Shared arrangements of the user-management tests."""

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.models import AuditEvent
from app.core.permissions import Role
from app.core.state import AppState
from app.customers.models import Customer, EServiceState
from app.users.models import UserAccount
from tests.factories import auth_headers, create_customer, create_user


@dataclass
class Tenant:
    """A customer with a signed-in portal admin."""

    customer: Customer
    admin: UserAccount
    headers: dict[str, str]


async def make_tenant(
    session: AsyncSession, state: AppState, eservice_state: EServiceState = EServiceState.ACTIVE
) -> Tenant:
    tenant_customer = await create_customer(session, state=eservice_state)
    admin = await create_user(session, state, tenant_customer, role=Role.CUSTOMER_PORTAL_ADMIN)
    return Tenant(tenant_customer, admin, await auth_headers(session, state, admin))


def new_user_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "login": "Admin.Telefonanlage1",
        "role": "pbx_admin",
        "first_name": "Paul",
        "last_name": "Pbx",
        "email": "paul@example.com",
    }
    body.update(overrides)
    return body


async def audit_actions(session: AsyncSession, target_id: int) -> list[str]:
    rows = await session.execute(
        select(AuditEvent.action)
        .where(AuditEvent.target_type == "user", AuditEvent.target_id == str(target_id))
        .order_by(AuditEvent.id)
    )
    return list(rows.scalars())


async def count_users(session: AsyncSession, **where: Any) -> int:
    query = select(func.count(UserAccount.id)).filter_by(**where)
    return int((await session.execute(query)).scalar_one())
