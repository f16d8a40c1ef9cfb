"""Every query of user management: lookups, the keyset-paginated list, admin-row locks."""

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple, TypeVar

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    String,
    and_,
    bindparam,
    func,
    or_,
    select,
    tuple_,
)
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.clock import utcnow
from app.core.db import UTCDateTime
from app.core.direct import Prepared, Queries
from app.core.json_sql import json_document, json_document_or_null, json_text
from app.core.permissions import Role
from app.customers.models import Customer
from app.invitations.models import Invitation
from app.outbox.models import OutboxMessage
from app.users.models import ACCOUNT_FIELDS, UserAccount
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


# What the user representation shows of an account (the fields of `Account`, never its
# password hash), and login_key, the value a cursor of the login sort holds.
_ACCOUNT_COLUMNS = (*ACCOUNT_FIELDS, "login_key")
# The invitation block: the dispatch's columns, whether it expired unaccepted (at the moment
# bound as `now`), and the state of its mail. One mapping for the single-user row and for the
# list's JSON documents.
_INVITATION_FIELDS: dict[str, ColumnElement[Any]] = {
    **{
        name: _invitations[name]
        for name in ("scheduled_for", "sent_at", "sent_count", "expires_at")
    },
    "expired": and_(
        _invitations.accepted_at.is_(None),
        _invitations.expires_at.is_not(None),
        _invitations.expires_at <= bindparam("now", type_=UTCDateTime()),
    ),
    "delivery": _outbox.state,
}
_INVITATION_START = len(_ACCOUNT_COLUMNS) + 1  # after the account's columns and the flag

UserRow = dict[str, Any]
"""A user as the single-user queries read it: the account's columns by name, and under
`invitation` the invitation's columns, `expired` and the `delivery` state of its mail (None
without invitation). The list reads JSON documents instead (`UserDocument`)."""


# Users with their invitation and the state of its mail.
_USERS_JOINED = UserAccount.__table__.outerjoin(
    Invitation.__table__, _invitations.user_id == _users.id
).outerjoin(OutboxMessage.__table__, _outbox.id == _invitations.outbox_message_id)

# Users with their invitation and its mail's delivery state, in one query (no N+1); built
# once, each query adds its conditions.
_USER_ROWS = select(
    *(_users[name] for name in _ACCOUNT_COLUMNS),
    _invitations.user_id,
    *_INVITATION_FIELDS.values(),
).select_from(_USERS_JOINED)


@dataclass(frozen=True)
class DocumentLayout:
    """The keys of a user's JSON document, in order: the account's and the invitation's.

    The user representation's schema decides them (see app/users/listing.py); every key is
    the name of an account column, or of an entry of `_INVITATION_FIELDS`.
    """

    account: tuple[str, ...]
    invitation: tuple[str, ...]

    def __post_init__(self) -> None:
        # Checked when the layout is made (at import), not on the first request.
        unknown = [key for key in self.account if key not in _users] + [
            key for key in self.invitation if key not in _INVITATION_FIELDS
        ]
        if unknown:
            raise ValueError(f"no column for the user document's keys {unknown}")


def _user_document(layout: DocumentLayout) -> ColumnElement[Any]:
    """The user representation as JSON, written by the database (see app/core/json_sql.py)."""
    invitation = json_document_or_null(
        _invitations.user_id.is_(None),
        [(key, _INVITATION_FIELDS[key]) for key in layout.invitation],
    )
    return json_text(
        json_document([*((key, _users[key]) for key in layout.account), ("invitation", invitation)])
    )


# A listed user: its JSON document, and where the page's cursor would continue.
class UserDocument(NamedTuple):
    """One user of the list: its JSON document, its sort column's value (for the cursor)."""

    document: str
    sort_value: Any
    id: int


def _rows(result: Iterable[Sequence[Any]]) -> list[UserRow]:
    rows = []
    for values in result:
        row = dict(zip(_ACCOUNT_COLUMNS, values, strict=False))
        row["invitation"] = (
            dict(zip(_INVITATION_FIELDS, values[_INVITATION_START:], strict=True))
            if values[_INVITATION_START - 1] is not None
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


_ONE_ROW = _USER_ROWS.where(_users.id == bindparam("user_id"))


async def get_user_row(session: AsyncSession, user_id: int) -> UserRow:
    """The user with its invitation block, as stored (after a change, for the response).

    Pending changes are flushed first: the row is read from the database, not from the
    session's objects.
    """
    await session.flush()
    connection = await session.connection()
    result = await connection.execute(_ONE_ROW, {"user_id": user_id, "now": utcnow()})
    return _rows(result)[0]


def _like_pattern(text: str) -> str:
    """A LIKE pattern of `text` anywhere, its `%` and `_` escaped with `/`."""
    escaped = text.replace("/", "//").replace("%", "/%").replace("_", "/_")
    return f"%{escaped}%"


# Which filters a list query has: status, role, q.
_Shape = tuple[bool, bool, bool]


def _filtered(query: _Q, shape: _Shape) -> _Q:
    """The customer's users matching the filters present; values are bound per execution."""
    status, role, q = shape
    query = query.where(_users.customer_id == bindparam("customer_id"))
    if status:
        query = query.where(_users.status == bindparam("status"))
    if role:
        query = query.where(_users.role == bindparam("role"))
    if q:
        # Both sides lowered by the database, as icontains() does.
        pattern = func.lower(bindparam("q", type_=String()))
        query = query.where(
            or_(
                *(
                    func.lower(column).like(pattern, escape="/")
                    for column in (
                        _users.login_key,
                        _users.first_name,
                        _users.last_name,
                        _users.email,
                    )
                )
            )
        )
    return query


def _filter_values(customer_id: int, filters: UserFilter) -> dict[str, Any]:
    values: dict[str, Any] = {"customer_id": customer_id}
    if filters.status is not None:
        values["status"] = filters.status
    if filters.role is not None:
        values["role"] = filters.role
    if filters.q:
        values["q"] = _like_pattern(filters.q)
    return values


def _shape(filters: UserFilter) -> _Shape:
    return (filters.status is not None, filters.role is not None, bool(filters.q))


@functools.cache
def _list_query(
    layout: DocumentLayout,
    shape: _Shape,
    sort: str,
    descending: bool,
    keyset: bool,
    unique_sort: bool,
) -> Prepared:
    """The list's statement for one combination of filters, sort and keyset, built and
    compiled once."""
    column = SORT_COLUMNS[sort]
    documents = select(
        _user_document(layout).label("document"), column.label("sort_value"), _users.id
    ).select_from(_USERS_JOINED)
    query = _filtered(documents, shape)
    if keyset:
        if unique_sort:
            bound = bindparam("after", type_=column.type)
            query = query.where(column < bound if descending else column > bound)
        else:
            left = tuple_(column, _users.id)
            right = tuple_(bindparam("after", type_=column.type), bindparam("after_id"))
            query = query.where(left < right if descending else left > right)
    columns = [column] if unique_sort else [column, _users.id]
    order = [col.desc() if descending else col.asc() for col in columns]
    return Prepared(query.order_by(*order).limit(bindparam("limit", type_=Integer())))


async def list_users(
    connection: Queries,
    customer_id: int,
    filters: UserFilter,
    *,
    layout: DocumentLayout,
    sort: str,
    descending: bool,
    after: Keyset | None,
    limit: int,
    unique_sort: bool,
) -> list[UserDocument]:
    """Up to `limit` users in the order (sort column, id), starting strictly after `after`.

    A unique sort column (id, login) orders alone; others add the id as tie-break, matching
    the (customer_id, column, id) indexes.
    """
    query = _list_query(layout, _shape(filters), sort, descending, after is not None, unique_sort)
    values = _filter_values(customer_id, filters)
    values["limit"] = limit
    values["now"] = utcnow()
    if after is not None:
        values["after"] = after.id if sort == "id" else after.value
        values["after_id"] = after.id
    return [UserDocument._make(row) for row in await connection.all(query, values)]


@functools.cache
def _count_query(shape: _Shape) -> Prepared:
    return Prepared(_filtered(select(func.count(_users.id)), shape))


async def count_users(connection: Queries, customer_id: int, filters: UserFilter) -> int:
    rows = await connection.all(_count_query(_shape(filters)), _filter_values(customer_id, filters))
    return int(rows[0][0])


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
