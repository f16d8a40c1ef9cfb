"""Every query of user management: lookups, the keyset-paginated list, admin-row locks."""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, func, literal, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.permissions import Role
from app.customers.models import Customer
from app.invitations.models import Invitation
from app.outbox.models import OutboxMessage
from app.users.models import UserAccount
from app.users.status import UserStatus

_Q = TypeVar("_Q", bound=Select[*tuple[Any, ...]])

# The tables themselves, not the mapped classes: the list's queries read plain rows, so they
# need none of the ORM's loading (entities, identity map, per-object bookkeeping).
_users = UserAccount.__table__.c
_invitations = Invitation.__table__.c
_outbox = OutboxMessage.__table__.c

# Sort name of the API -> the column it orders by (login case-insensitively, via login_key).
SORT_COLUMNS: dict[str, ColumnElement[Any]] = {
    "id": _users.id,
    "login": _users.login_key,
    "last_name": _users.last_name,
    "status": _users.status,
    "created_at": _users.created_at,
}


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


# What the user representation shows of an account (never its password hash), and login_key,
# the value a cursor of the login sort holds.
_ACCOUNT_COLUMNS = (
    "id",
    "login",
    "login_key",
    "role",
    "status",
    "first_name",
    "last_name",
    "email",
    "phone",
    "mobile",
    "language",
    "expires_at",
    "last_login_at",
    "created_at",
    "updated_at",
    "version",
)
# The invitation block: the dispatch's columns and the state of its mail.
_INVITATION_COLUMNS = ("scheduled_for", "sent_at", "sent_count", "expires_at", "accepted_at")
_INVITATION_KEYS = (*_INVITATION_COLUMNS, "delivery")
_INVITATION_START = len(_ACCOUNT_COLUMNS) + 1  # after the account's columns and the flag

UserRow = dict[str, Any]
"""A user as the user queries read it: the account's columns by name, and under `invitation`
the invitation's columns and the `delivery` state of its mail (None without invitation)."""

# Users with their invitation and its mail's delivery state, in one query (no N+1); built
# once, each query adds its conditions.
_USER_ROWS = select(
    *(_users[name] for name in _ACCOUNT_COLUMNS),
    _invitations.user_id,
    *(_invitations[name] for name in _INVITATION_COLUMNS),
    _outbox.state,
).select_from(
    UserAccount.__table__.outerjoin(
        Invitation.__table__, _invitations.user_id == _users.id
    ).outerjoin(OutboxMessage.__table__, _outbox.id == _invitations.outbox_message_id)
)


def _rows(result: Iterable[Sequence[Any]]) -> list[UserRow]:
    rows = []
    for values in result:
        row = dict(zip(_ACCOUNT_COLUMNS, values, strict=False))
        has_invitation = values[_INVITATION_START - 1] is not None
        row["invitation"] = (
            dict(zip(_INVITATION_KEYS, values[_INVITATION_START:], strict=True))
            if has_invitation
            else None
        )
        rows.append(row)
    return rows


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
    """The user with its invitation block, as stored (after a change, for the response).

    Pending changes are flushed first: the row is read from the database, not from the
    session's objects.
    """
    await session.flush()
    result = await session.execute(_USER_ROWS.where(_users.id == user_id))
    return _rows(result)[0]


def _filtered(query: _Q, customer_id: int, filters: UserFilter) -> _Q:
    query = query.where(_users.customer_id == customer_id)
    if filters.status is not None:
        query = query.where(_users.status == filters.status)
    if filters.role is not None:
        query = query.where(_users.role == filters.role)
    if filters.q:
        query = query.where(
            or_(
                _users.login_key.icontains(filters.q, autoescape=True),
                _users.first_name.icontains(filters.q, autoescape=True),
                _users.last_name.icontains(filters.q, autoescape=True),
                _users.email.icontains(filters.q, autoescape=True),
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
    query = _filtered(_USER_ROWS, customer_id, filters)
    if after is not None:
        if unique_sort:
            bound = literal(after.value if sort != "id" else after.id, type_=column.type)
            query = query.where(column < bound if descending else column > bound)
        else:
            left = tuple_(column, _users.id)
            right = tuple_(literal(after.value, type_=column.type), literal(after.id))
            query = query.where(left < right if descending else left > right)
    columns = [column] if unique_sort else [column, _users.id]
    order = [col.desc() if descending else col.asc() for col in columns]
    result = await session.execute(query.order_by(*order).limit(limit))
    return _rows(result)


async def count_users(session: AsyncSession, customer_id: int, filters: UserFilter) -> int:
    query = _filtered(select(func.count(_users.id)), customer_id, filters)
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
