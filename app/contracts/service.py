"""Contracts: what a user of a customer sees, and the operator adding one."""

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.contracts import repository
from app.contracts.errors import ContractNumberTaken, CustomerNotFound
from app.contracts.models import Contract, ContractState
from app.contracts.schemas import ContractOut
from app.core.auth import Principal
from app.core.permissions import Action, Role, is_allowed


def can_open_pbx(role: Role, contract: Contract) -> bool:
    """A role allowed to open PBXs, an active contract, and a PBX tenant to open."""
    return (
        is_allowed(role, Action.OPEN_PBX)
        and contract.state == ContractState.ACTIVE
        and bool(contract.pbx_tenant)
    )


async def list_contracts(
    session: AsyncSession, principal: Principal, *, product: str | None = None
) -> list[ContractOut]:
    """The caller's customer's contracts, each with whether the caller may open its PBX."""
    contracts = await repository.list_for_customer(session, principal.customer_id, product=product)
    return [
        ContractOut(
            id=contract.id,
            contract_number=contract.contract_number,
            product=contract.product,
            label=contract.label,
            state=contract.state,
            can_open_pbx=can_open_pbx(principal.role, contract),
        )
        for contract in contracts
    ]


async def create_contract(
    session: AsyncSession,
    *,
    customer_number: str,
    contract_number: str,
    product: str = "cloud.phone",
    label: str | None = None,
    pbx_tenant: str | None = None,
    pbx_ui_url: str | None = None,
) -> Contract:
    """Add a contract for an existing customer (operator command); numbers are unique."""
    customer = await repository.get_customer_by_number(session, customer_number)
    if customer is None:
        raise CustomerNotFound(f"no customer with number {customer_number}")
    try:
        async with session.begin_nested():
            return await repository.add(
                session,
                Contract(
                    customer_id=customer.id,
                    contract_number=contract_number,
                    product=product,
                    label=label,
                    state=ContractState.ACTIVE,
                    pbx_tenant=pbx_tenant,
                    pbx_ui_url=pbx_ui_url,
                ),
            )
    except IntegrityError as exc:
        raise ContractNumberTaken(f"contract number {contract_number} is already in use") from exc
