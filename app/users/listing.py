"""The user table: filters, sort orders and keyset cursors of `GET /users`."""

import hashlib
import json
from datetime import UTC, datetime
from typing import Any, TypeGuard

from pydantic import BaseModel, Field

from app.core.db import Database
from app.core.pagination import InvalidCursor, decode_cursor, encode_cursor
from app.core.permissions import Role
from app.users import repository
from app.users.fields import SearchText, reject_unstorable_text
from app.users.repository import DocumentLayout, Keyset, UserFilter
from app.users.schemas import InvitationOut, UserOut
from app.users.status import UserStatus

SORT_PATTERN = r"^-?(id|login|last_name|status|created_at)$"


class UserListQuery(BaseModel):
    """The query parameters of `GET /users`, validated in one pass."""

    status: UserStatus | None = None
    role: Role | None = None
    q: SearchText | None = Field(
        default=None, description="Part of login, name or e-mail (any case)."
    )
    sort: str = Field(default="id", pattern=SORT_PATTERN, description="`-` prefix: descending")
    limit: int = Field(default=50, ge=1, le=200)
    cursor: str | None = Field(default=None, max_length=512)
    include_total: bool = False

    @property
    def filters(self) -> UserFilter:
        return UserFilter(status=self.status, role=self.role, q=self.q)


MAX_ID = 2**31 - 1
# Sort keys that are unique on their own, so the cursor needs no id tie-break.
_UNIQUE_SORTS = frozenset({"id", "login"})


def _fingerprint(filters: UserFilter) -> str:
    """Ties a cursor to the filters it was made for; another filter set needs a new start."""
    raw = json.dumps([filters.status, filters.role, filters.q]).encode()
    return hashlib.sha256(raw).hexdigest()[:16]


def _sort_value(sort: str, value: Any) -> Any:
    """The last listed user's value of the sort column, as its cursor holds it."""
    if sort == "status":
        return str(value)
    if sort == "created_at":
        return value.isoformat()
    return value


def _valid_id(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_ID


def _decode_value(sort: str, value: Any) -> Any:
    if sort == "id":
        if _valid_id(value):
            return value
    elif sort == "created_at":
        if isinstance(value, str):
            try:
                moment = datetime.fromisoformat(value)
                if moment.tzinfo is not None:
                    return moment.astimezone(UTC)
            except (ValueError, OverflowError):
                pass
    elif sort == "status":
        if isinstance(value, str) and value in {status.value for status in UserStatus}:
            return UserStatus(value)
    elif isinstance(value, str) and len(value) <= 100:
        try:
            return reject_unstorable_text(value)
        except ValueError:
            pass
    raise InvalidCursor("The cursor does not belong to this sort order.")


def _keyset(cursor: str, sort_param: str, filters: UserFilter) -> Keyset:
    payload = decode_cursor(cursor)
    if payload.get("s") != sort_param or payload.get("f") != _fingerprint(filters):
        raise InvalidCursor("The cursor was made for another sort order or other filters.")
    row_id = payload.get("i")
    if not _valid_id(row_id):
        raise InvalidCursor("The cursor is not valid.")
    sort = sort_param.lstrip("-")
    return Keyset(value=_decode_value(sort, payload.get("v")), id=row_id)


# The user representation's keys, in the order the schema gives them.
_LAYOUT = DocumentLayout(
    account=tuple(name for name in UserOut.model_fields if name != "invitation"),
    invitation=tuple(InvitationOut.model_fields),
)


async def list_page(database: Database, customer_id: int, query: UserListQuery) -> bytes:
    """A page of the customer's users as `UserPage` JSON; follow `next_cursor` for the next.

    The users' documents are written by the database (see app/core/json_sql.py); the page
    joins them.
    """
    filters, sort_param, limit = query.filters, query.sort, query.limit
    sort, descending = sort_param.lstrip("-"), sort_param.startswith("-")
    after = _keyset(query.cursor, sort_param, filters) if query.cursor else None
    async with database.direct() as connection:
        users = await repository.list_users(
            connection,
            customer_id,
            filters,
            layout=_LAYOUT,
            sort=sort,
            descending=descending,
            after=after,
            limit=limit + 1,
            unique_sort=sort in _UNIQUE_SORTS,
        )
        more = len(users) > limit
        users = users[:limit]
        total = (
            await repository.count_users(connection, customer_id, filters)
            if query.include_total
            else None
        )
    next_cursor = None
    if more:
        last = users[-1]
        next_cursor = encode_cursor(
            {
                "s": sort_param,
                "f": _fingerprint(filters),
                "v": _sort_value(sort, last.sort_value),
                "i": last.id,
            }
        )
    items = ",".join(user.document for user in users)
    return (
        f'{{"items":[{items}],"next_cursor":{json.dumps(next_cursor)},"total":{json.dumps(total)}}}'
    ).encode()
