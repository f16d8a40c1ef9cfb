"""cloud.phone management: each role sees its own customer's contracts, nothing else."""

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.contracts.models import ContractState
from app.core.permissions import Role
from app.core.state import AppState
from tests.factories import auth_headers, create_contract, create_customer, create_user


@pytest.mark.parametrize(
    ("role", "may_open"),
    [
        (Role.PBX_ADMIN, True),
        (Role.CUSTOMER_PORTAL_ADMIN, False),
        (Role.CUSTOMER_ACCOUNTING, False),
    ],
)
async def test_each_role_lists_own_contracts(
    role: Role, may_open: bool, client: httpx.AsyncClient, session: AsyncSession, state: AppState
) -> None:
    customer = await create_customer(session)
    other = await create_customer(session)
    user = await create_user(session, state, customer, role=role)
    active = await create_contract(session, customer, number=f"A-{customer.id}")
    ended = await create_contract(
        session, customer, number=f"B-{customer.id}", state=ContractState.TERMINATED
    )
    bare = await create_contract(session, customer, number=f"C-{customer.id}", pbx_tenant=None)
    await create_contract(session, other)

    response = await client.get(
        "/api/v1/contracts", headers=await auth_headers(session, state, user)
    )
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    items = response.json()["items"]
    assert [item["id"] for item in items] == [active.id, ended.id, bare.id]
    assert set(items[0]) == {"id", "contract_number", "product", "label", "state", "can_open_pbx"}
    assert items[0] == {
        "id": active.id,
        "contract_number": active.contract_number,
        "product": "cloud.phone",
        "label": "Cloud-Telefonanlage",
        "state": "active",
        "can_open_pbx": may_open,
    }
    assert items[1]["state"] == "terminated"
    assert items[1]["can_open_pbx"] is False
    assert items[2]["can_open_pbx"] is False


async def test_product_filter(
    client: httpx.AsyncClient, session: AsyncSession, state: AppState
) -> None:
    customer = await create_customer(session)
    user = await create_user(session, state, customer)
    phone = await create_contract(session, customer)
    await create_contract(session, customer, product="cloud.fax", pbx_tenant=None)
    headers = await auth_headers(session, state, user)

    response = await client.get(
        "/api/v1/contracts", params={"product": "cloud.phone"}, headers=headers
    )
    assert [item["id"] for item in response.json()["items"]] == [phone.id]
    response = await client.get("/api/v1/contracts", params={"product": "none"}, headers=headers)
    assert response.json()["items"] == []
    response = await client.get("/api/v1/contracts", params={"product": "a b"}, headers=headers)
    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"


async def test_anonymous_is_401(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/contracts")
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
