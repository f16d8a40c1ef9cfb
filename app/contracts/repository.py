"""Queries on contracts."""

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.contracts.models import Contract
from app.customers.models import Customer


async def list_for_customer(
    session: AsyncSession, customer_id: int, *, product: str | None = None
) -> list[Contract]:
    query = select(Contract).where(Contract.customer_id == customer_id)
    if product is not None:
        query = query.where(Contract.product == product)
    result = await session.execute(query.order_by(Contract.contract_number, Contract.id))
    return list(result.scalars())


async def get_with_customer(
    session: AsyncSession, contract_id: int, customer_id: int
) -> tuple[Contract, Customer] | None:
    """The contract and its customer, only if it belongs to `customer_id`."""
    row = (
        await session.execute(
            select(Contract, Customer)
            .join(Customer, Customer.id == Contract.customer_id)
            .where(Contract.id == contract_id, Contract.customer_id == customer_id)
        )
    ).one_or_none()
    return None if row is None else (row[0], row[1])


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
