"""Queries of customers: lookup by number, adding one, the activation code's one-time use."""

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.customers.models import Customer, EServiceState


async def find_customer_by_number(session: AsyncSession, customer_number: str) -> Customer | None:
    return (
        await session.execute(select(Customer).where(Customer.customer_number == customer_number))
    ).scalar_one_or_none()


async def add_customer(session: AsyncSession, customer: Customer) -> Customer:
    """Insert; a taken customer number fails here on `uq_customers_customer_number`."""
    session.add(customer)
    await session.flush()
    return customer


async def consume_activation_code(
    session: AsyncSession, customer_number: str, code_hash: str
) -> int | None:
    """Clear the code in one conditional UPDATE; the customer's id if it matched, else None.

    Only a `pending` customer's code counts: once e:service is active, the letter is void,
    however the first administrator got there. Of concurrent registrations with the same
    letter exactly one gets the id.
    """
    result = await session.execute(
        update(Customer)
        .where(
            Customer.customer_number == customer_number,
            Customer.activation_code_hash == code_hash,
            Customer.eservice_state == EServiceState.PENDING,
        )
        .values(activation_code_hash=None)
        .returning(Customer.id)
        .execution_options(synchronize_session=False)
    )
    return result.scalar_one_or_none()
