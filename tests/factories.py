"""Plain async builders for test data."""

import itertools
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.sessions import start_session
from app.contracts.models import Contract, ContractState
from app.core.permissions import Role
from app.core.state import AppState
from app.customers.models import Customer, EServiceState
from app.users.models import Language, UserAccount
from app.users.status import UserStatus

PASSWORD = "correct horse battery staple 42"
_sequence = itertools.count(1)


def unique(prefix: str) -> str:
    return f"{prefix}{next(_sequence)}"


async def create_customer(
    session: AsyncSession,
    *,
    number: str | None = None,
    name: str = "Muster GmbH",
    state: EServiceState = EServiceState.ACTIVE,
    activation_code_hash: str | None = None,
) -> Customer:
    customer = Customer(
        customer_number=number or unique("23"),
        name=name,
        eservice_state=state,
        activation_code_hash=activation_code_hash,
    )
    session.add(customer)
    await session.flush()
    return customer


async def create_user(
    session: AsyncSession,
    state: AppState,
    customer: Customer,
    *,
    login: str | None = None,
    role: Role = Role.PBX_ADMIN,
    status: UserStatus = UserStatus.ACTIVE,
    password: str | None = PASSWORD,
    first_name: str = "Erika",
    last_name: str = "Mustermann",
    email: str | None = None,
    language: Language = Language.DE,
    expires_at: datetime | None = None,
) -> UserAccount:
    login = login or unique("user.")
    user = UserAccount(
        customer_id=customer.id,
        login=login,
        role=role,
        status=status,
        first_name=first_name,
        last_name=last_name,
        email=email or f"{login.lower()}@example.com",
        language=language,
        password_hash=await state.hasher.hash(password) if password else None,
        expires_at=expires_at,
    )
    session.add(user)
    await session.flush()
    return user


async def create_contract(
    session: AsyncSession,
    customer: Customer,
    *,
    number: str | None = None,
    product: str = "cloud.phone",
    state: ContractState = ContractState.ACTIVE,
    pbx_tenant: str | None = "tenant-1",
    pbx_ui_url: str | None = None,
) -> Contract:
    contract = Contract(
        customer_id=customer.id,
        contract_number=number or unique("V"),
        product=product,
        label="Cloud-Telefonanlage",
        state=state,
        pbx_tenant=pbx_tenant,
        pbx_ui_url=pbx_ui_url,
    )
    session.add(contract)
    await session.flush()
    return contract


async def auth_headers(session: AsyncSession, state: AppState, user: UserAccount) -> dict[str, str]:
    """A bearer header for `user`, through a real session (as a login would create)."""
    tokens = await start_session(state, session, user)
    return {"Authorization": f"Bearer {tokens.access_token}"}
