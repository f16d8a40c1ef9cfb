"""Concurrency on PostgreSQL: unique logins and the last-admin rule hold under parallel requests."""

import asyncio
import itertools

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.permissions import Role
from app.core.state import AppState
from app.users.models import UserAccount
from app.users.status import UserStatus
from tests.conftest import postgres_only
from tests.factories import auth_headers, create_user
from tests.users.helpers import make_tenant, new_user_body

pytestmark = [postgres_only(), pytest.mark.committing]


def _case_variants(login: str, count: int) -> list[str]:
    """`count` spellings of `login` that differ only in letter case."""
    letters = [index for index, char in enumerate(login) if char.isalpha()]
    variants = []
    for mask in itertools.islice(itertools.count(), count):
        chars = list(login.lower())
        for bit, index in enumerate(letters):
            if mask >> bit & 1:
                chars[index] = chars[index].upper()
        variants.append("".join(chars))
    assert len(set(variants)) == count
    return variants


async def test_concurrent_creates_of_one_login(
    client: httpx.AsyncClient, session: AsyncSession, state: AppState
) -> None:
    tenant = await make_tenant(session, state)
    await session.commit()
    logins = _case_variants("Admin.Telefonanlage1", 20)
    responses = await asyncio.gather(
        *(
            client.post(
                "/api/v1/users",
                json=new_user_body(login=login, email=f"p{number}@example.com"),
                headers=tenant.headers,
            )
            for number, login in enumerate(logins)
        )
    )
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [201] + [409] * 19, [response.text for response in responses]
    assert {r.json()["code"] for r in responses if r.status_code == 409} == {"login_taken"}
    count = await session.execute(
        select(func.count(UserAccount.id)).where(UserAccount.login_key == "admin.telefonanlage1")
    )
    assert count.scalar_one() == 1


async def test_two_admins_disabling_each_other_leave_one(
    client: httpx.AsyncClient, session: AsyncSession, state: AppState
) -> None:
    for _round in range(10):
        tenant = await make_tenant(session, state)
        other = await create_user(session, state, tenant.customer, role=Role.CUSTOMER_PORTAL_ADMIN)
        other_headers = await auth_headers(session, state, other)
        await session.commit()
        first, second = await asyncio.gather(
            client.post(f"/api/v1/users/{other.id}/disable", headers=tenant.headers),
            client.post(f"/api/v1/users/{tenant.admin.id}/disable", headers=other_headers),
        )
        outcomes = sorted([first.status_code, second.status_code])
        assert outcomes[0] == 200, (first.text, second.text)
        assert outcomes[1] in (401, 409, 412), (first.text, second.text)
        active = await session.execute(
            select(func.count(UserAccount.id)).where(
                UserAccount.customer_id == tenant.customer.id,
                UserAccount.status == UserStatus.ACTIVE,
            )
        )
        assert active.scalar_one() == 1
        await session.commit()
