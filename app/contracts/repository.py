"""Queries on contracts."""

from typing import NamedTuple, cast

from sqlalchemy import Table, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.contracts.models import Contract, ContractState
from app.core.direct import Prepared, Queries
from app.customers.models import Customer


async def list_for_customer(
    session: AsyncSession, customer_id: int, *, product: str | None = None
) -> list[Contract]:
    query = select(Contract).where(Contract.customer_id == customer_id)
    if product is not None:
        query = query.where(Contract.product == product)
    result = await session.execute(query.order_by(Contract.contract_number, Contract.id))
    return list(result.scalars())


class PbxTarget(NamedTuple):
    """What a PBX hand-off needs of a contract and of its customer."""

    id: int
    state: ContractState
    contract_number: str
    pbx_tenant: str | None
    pbx_ui_url: str | None
    customer_number: str


# Built once, on the tables (a Core statement: no ORM loading): a hand-off binds two ids.
_CONTRACTS = cast(Table, Contract.__table__)
_CUSTOMERS = cast(Table, Customer.__table__)
_PBX_TARGET = Prepared(
    select(
        _CONTRACTS.c.id,
        _CONTRACTS.c.state,
        _CONTRACTS.c.contract_number,
        _CONTRACTS.c.pbx_tenant,
        _CONTRACTS.c.pbx_ui_url,
        _CUSTOMERS.c.customer_number,
    )
    .join(_CUSTOMERS, _CUSTOMERS.c.id == _CONTRACTS.c.customer_id)
    .where(
        _CONTRACTS.c.id == bindparam("contract_id"),
        _CONTRACTS.c.customer_id == bindparam("customer_id"),
    )
)


async def get_pbx_target(
    connection: Queries, contract_id: int, customer_id: int
) -> PbxTarget | None:
    """The contract's hand-off columns, only if it belongs to `customer_id`.

    Exactly the columns, not the entities: a hand-off reads them once and changes nothing.
    """
    parameters = {"contract_id": contract_id, "customer_id": customer_id}
    rows = await connection.all(_PBX_TARGET, parameters)
    return PbxTarget._make(rows[0]) if rows else None


async def get_customer_by_number(session: AsyncSession, customer_number: str) -> Customer | None:
    result = await session.execute(
        select(Customer).where(Customer.customer_number == customer_number)
    )
    return result.scalar_one_or_none()


async def add(session: AsyncSession, contract: Contract) -> Contract:
    session.add(contract)
    await session.flush()
    return contract


async def find_by_number(session: AsyncSession, contract_number: str) -> Contract | None:
    """The contract with this number, of whichever customer (numbers are unique)."""
    result = await session.execute(
        select(Contract).where(Contract.contract_number == contract_number)
    )
    return result.scalar_one_or_none()
