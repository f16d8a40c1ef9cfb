"""One letter, many hands: concurrent registrations with one code (PostgreSQL)."""

import asyncio

import pytest
from sqlalchemy import func, select

from app.customers.service import create_customer
from app.users.models import UserAccount
from tests.conftest import postgres_only


@postgres_only()
@pytest.mark.committing
async def test_one_code_registers_one_admin(client, database):
    async with database.sessionmaker.begin() as session:
        customer, code = await create_customer(session, customer_number="7700001", name="E GmbH")

    def body(i: int) -> dict[str, str]:
        return {
            "customer_number": "7700001",
            "activation_code": code,
            "login": f"first.admin{i}",
            "first_name": "Max",
            "last_name": "Muster",
            "email": f"admin{i}@example.com",
        }

    responses = await asyncio.gather(
        *(client.post("/api/v1/registrations", json=body(i)) for i in range(8))
    )
    assert sorted(r.status_code for r in responses) == [202] + [400] * 7
    async with database.sessionmaker() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(UserAccount)
            .where(UserAccount.customer_id == customer.id)
        )
        assert count == 1
