import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.permissions import Role
from app.core.state import AppState
from tests.factories import auth_headers, create_customer, create_user


async def test_healthz(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_readyz_reaches_database(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200


async def test_principal_from_session(session: AsyncSession, state: AppState) -> None:
    customer = await create_customer(session)
    user = await create_user(session, state, customer, role=Role.CUSTOMER_PORTAL_ADMIN)
    headers = await auth_headers(session, state, user)
    principal = await state.authenticate(headers["Authorization"].split()[1])
    assert principal.user.id == user.id
