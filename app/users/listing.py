"""The user table: filters, sort orders and keyset cursors of `GET /users`."""

import hashlib
import json
from datetime import UTC, datetime
from typing import Any, TypeGuard

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.pagination import InvalidCursor, decode_cursor, encode_cursor
from app.users import repository
from app.users.fields import reject_unstorable_text
from app.users.repository import Keyset, UserFilter
from app.users.schemas import UserOut, UserPage
from app.users.status import UserStatus

SORT_PATTERN = r"^-?(id|login|last_name|status|created_at)$"
MAX_ID = 2**31 - 1
# Sort keys that are unique on their own, so the cursor needs no id tie-break.
_UNIQUE_SORTS = frozenset({"id", "login"})


def _fingerprint(filters: UserFilter) -> str:
    """Ties a cursor to the filters it was made for; another filter set needs a new start."""
    raw = json.dumps([filters.status, filters.role, filters.q]).encode()
    return hashlib.sha256(raw).hexdigest()[:16]


def _sort_value(sort: str, login_key: str, user: UserOut) -> Any:
    if sort == "login":
        return login_key
    if sort == "last_name":
        return user.last_name
    if sort == "status":
        return str(user.status)
    if sort == "created_at":
        return user.created_at.isoformat()
    return user.id


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


async def list_page(
    session: AsyncSession,
    customer_id: int,
    filters: UserFilter,
    *,
    sort_param: str,
    limit: int,
    cursor: str | None,
    include_total: bool,
) -> UserPage:
    """A page of the customer's users; follow `next_cursor` for the next one."""
    sort, descending = sort_param.lstrip("-"), sort_param.startswith("-")
    after = _keyset(cursor, sort_param, filters) if cursor else None
    rows = await repository.list_users(
        session,
        customer_id,
        filters,
        sort=sort,
        descending=descending,
        after=after,
        limit=limit + 1,
        unique_sort=sort in _UNIQUE_SORTS,
    )
    more = len(rows) > limit
    rows = rows[:limit]
    total = await repository.count_users(session, customer_id, filters) if include_total else None
    # The rows' plain values validated in one pass of pydantic-core, not per row in Python.
    page = UserPage.model_validate({"items": rows, "next_cursor": None, "total": total})
    if more:
        last = page.items[-1]
        page.next_cursor = encode_cursor(
            {
                "s": sort_param,
                "f": _fingerprint(filters),
                "v": _sort_value(sort, rows[-1]["login_key"], last),
                "i": last.id,
            }
        )
    return page
