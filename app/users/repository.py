"""Every query of user management: lookups, the keyset-paginated list, admin-row locks."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Select, func, literal, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from app.core.permissions import Role
from app.customers.models import Customer
from app.invitations.models import Invitation
from app.outbox.models import DeliveryState, OutboxMessage
from app.users.models import UserAccount
from app.users.status import UserStatus

_Q = TypeVar("_Q", bound=Select[*tuple[Any, ...]])

# Sort name of the API -> the column it orders by (login case-insensitively, via login_key).
SORT_COLUMNS: dict[str, InstrumentedAttribute[Any]] = {
    "id": UserAccount.id,
    "login": UserAccount.login_key,
    "last_name": UserAccount.last_name,
    "status": UserAccount.status,
    "created_at": UserAccount.created_at,
}


@dataclass(frozen=True)
class UserRow:
    """A user with what its `invitation` block needs, loaded in the same query."""

    user: UserAccount
    invitation: Invitation | None
    delivery: DeliveryState | None


@dataclass(frozen=True)
class UserFilter:
    """The list's filters; all of them are ANDed."""

    status: UserStatus | None = None
    role: Role | None = None
    q: str | None = None


@dataclass(frozen=True)
class Keyset:
    """Where a page starts: strictly after (value, id) in the sort order."""

    value: Any
    id: int


def _user_rows_query() -> Select[UserAccount, Invitation, DeliveryState]:
    """Users with their invitation and its mail's delivery state, in one query (no N+1)."""
    query = select(UserAccount, Invitation, OutboxMessage.state)
    return query.outerjoin(Invitation, Invitation.user_id == UserAccount.id).outerjoin(
        OutboxMessage, OutboxMessage.id == Invitation.outbox_message_id
    )


def _rows(result: Sequence[Any]) -> list[UserRow]:
    return [UserRow(user=row[0], invitation=row[1], delivery=row[2]) for row in result]


async def get_customer(session: AsyncSession, customer_id: int) -> Customer | None:
    return await session.get(Customer, customer_id)


async def get_user(session: AsyncSession, customer_id: int, user_id: int) -> UserAccount | None:
    """The customer's user `user_id`; another customer's user is simply not found."""
    return (
        await session.execute(
            select(UserAccount).where(
                UserAccount.id == user_id, UserAccount.customer_id == customer_id
            )
        )
    ).scalar_one_or_none()


async def get_user_row(session: AsyncSession, user_id: int) -> UserRow:
    """The user with its invitation block (after a change, for the response)."""
    query = _user_rows_query().where(UserAccount.id == user_id)
    return _rows((await session.execute(query)).all())[0]


def _filtered(query: _Q, customer_id: int, filters: UserFilter) -> _Q:
    query = query.where(UserAccount.customer_id == customer_id)
    if filters.status is not None:
        query = query.where(UserAccount.status == filters.status)
    if filters.role is not None:
        query = query.where(UserAccount.role == filters.role)
    if filters.q:
        query = query.where(
            or_(
                UserAccount.login_key.icontains(filters.q, autoescape=True),
                UserAccount.first_name.icontains(filters.q, autoescape=True),
                UserAccount.last_name.icontains(filters.q, autoescape=True),
                UserAccount.email.icontains(filters.q, autoescape=True),
            )
        )
    return query


async def list_users(
    session: AsyncSession,
    customer_id: int,
    filters: UserFilter,
    *,
    sort: str,
    descending: bool,
    after: Keyset | None,
    limit: int,
    unique_sort: bool,
) -> list[UserRow]:
    """Up to `limit` rows in the order (sort column, id), starting strictly after `after`.

    A unique sort column (id, login) orders alone; others add the id as tie-break, matching
    the (customer_id, column, id) indexes.
    """
    column = SORT_COLUMNS[sort]
    query = _filtered(_user_rows_query(), customer_id, filters)
    if after is not None:
        if unique_sort:
            bound = literal(after.value if sort != "id" else after.id, type_=column.type)
            query = query.where(column < bound if descending else column > bound)
        else:
            left = tuple_(column, UserAccount.id)
            right = tuple_(literal(after.value, type_=column.type), literal(after.id))
            query = query.where(left < right if descending else left > right)
    columns = [column] if unique_sort else [column, UserAccount.id]
    order = [col.desc() if descending else col.asc() for col in columns]
    result = await session.execute(query.order_by(*order).limit(limit))
    return _rows(result.all())


async def count_users(session: AsyncSession, customer_id: int, filters: UserFilter) -> int:
    query = _filtered(select(func.count(UserAccount.id)), customer_id, filters)
    return int((await session.execute(query)).scalar_one())


async def lock_active_admin_ids(session: AsyncSession, customer_id: int) -> list[int]:
    """Ids of the customer's active portal admins, locked until the transaction ends.

    Two admins disabling each other at once: the second waits here for the first to commit,
    and then no longer sees the first's target as active (PostgreSQL re-checks locked rows).
    SQLite serialises writers with BEGIN IMMEDIATE anyway.
    """
    result = await session.execute(
        select(UserAccount.id)
        .where(
            UserAccount.customer_id == customer_id,
            UserAccount.role == Role.CUSTOMER_PORTAL_ADMIN,
            UserAccount.status == UserStatus.ACTIVE,
        )
        .order_by(UserAccount.id)
        .with_for_update()
    )
    return list(result.scalars())


async def add_user(session: AsyncSession, user: UserAccount) -> UserAccount:
    """Insert; a login taken case-insensitively fails here on `uq_user_accounts_login_key`."""
    session.add(user)
    await session.flush()
    return user


async def add_scheduled_invitation(
    session: AsyncSession, user_id: int, scheduled_for: datetime
) -> Invitation:
    invitation = Invitation(user_id=user_id, scheduled_for=scheduled_for, sent_count=0)
    session.add(invitation)
    await session.flush()
    return invitation


async def delete_user(session: AsyncSession, user: UserAccount) -> None:
    """Delete the account; its sessions, tokens and invitation go with it (ON DELETE CASCADE)."""
    await session.delete(user)
    await session.flush()


async def claim_expired_users(
    session: AsyncSession, now: datetime, batch: int
) -> Sequence[UserAccount]:
    """Accounts whose planned end has passed and that are not expired or disabled yet.

    SKIP LOCKED lets several worker processes sweep at once without waiting on each other.
    """
    return (
        (
            await session.execute(
                select(UserAccount)
                .where(
                    UserAccount.expires_at <= now,
                    UserAccount.status.not_in([UserStatus.EXPIRED, UserStatus.DISABLED]),
                )
                .order_by(UserAccount.id)
                .limit(batch)
                .with_for_update(skip_locked=True)
            )
        )
        .scalars()
        .all()
    )
