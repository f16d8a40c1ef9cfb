"""Queries of the auth feature on user accounts: look-up by login, login bookkeeping."""

from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import Table, Update, bindparam, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.cache import CHANGED_USER
from app.core.auth import Principal
from app.core.db import UTCDateTime
from app.core.errors import Unauthenticated
from app.users.models import ACCOUNT_FIELDS, Account, UserAccount
from app.users.status import UserStatus

# The statements of a login are built once: building and keying a statement costs more CPU
# than SQLite takes to run it. They are Core statements on the table (no ORM entities).
_USERS = cast(Table, UserAccount.__table__)
_FIND_STORED_PASSWORD = select(_USERS.c.id, _USERS.c.password_hash).where(
    _USERS.c.login_key == bindparam("login_key")
)
_NOW = bindparam("now", type_=UTCDateTime())


def _record_login_statement(*, new_hash: bool) -> Update:
    # `updated_at` is set to itself, or its onupdate default would move it.
    values: dict[str, object] = {"last_login_at": _NOW, "updated_at": _USERS.c.updated_at}
    if new_hash:
        values["password_hash"] = bindparam("new_hash")
    return (
        update(_USERS)
        .where(
            _USERS.c.id == bindparam("user_id"),
            _USERS.c.password_hash == bindparam("checked_hash"),
            _USERS.c.status == UserStatus.ACTIVE.value,
            or_(_USERS.c.expires_at.is_(None), _USERS.c.expires_at > _NOW),
        )
        .values(**values)
        .returning(*(_USERS.c[name] for name in ACCOUNT_FIELDS))
    )


_RECORD_LOGIN = {flag: _record_login_statement(new_hash=flag) for flag in (False, True)}


@dataclass(frozen=True, slots=True)
class StoredPassword:
    """What a password check needs of an account, and nothing more."""

    user_id: int
    password_hash: str | None


async def find_stored_password(session: AsyncSession, login_key: str) -> StoredPassword | None:
    row = (await session.execute(_FIND_STORED_PASSWORD, {"login_key": login_key})).one_or_none()
    return None if row is None else StoredPassword(row[0], row[1])


async def own_account(session: AsyncSession, principal: Principal) -> UserAccount:
    """The signed-in user's row, for a request that changes his own account."""
    user = await session.get(UserAccount, principal.user_id)
    if user is None:
        raise Unauthenticated("The session has ended.")
    return user


async def record_login(
    session: AsyncSession, checked: StoredPassword, now: datetime, new_hash: str | None
) -> Account | None:
    """Note the login (and an upgraded hash) of an account that may still log in with the
    password just checked; its row as it is now, or None when it changed meanwhile (another
    password, disabled, locked, expired): then there is no login.

    One statement checks and writes, so nothing can change in between. A login is no edit of
    the account: it touches neither `version` nor `updated_at`, so it neither invalidates an
    administrator's ETag nor collides with a concurrent login of the same user.
    """
    parameters = {
        "user_id": checked.user_id,
        "checked_hash": checked.password_hash,
        "now": now,
        "new_hash": new_hash,
    }
    result = await session.execute(
        _RECORD_LOGIN[new_hash is not None],
        parameters,
        execution_options={CHANGED_USER: checked.user_id},
    )
    row = result.one_or_none()
    return None if row is None else Account(*row)
