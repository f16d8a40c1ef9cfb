"""Queries of the auth feature on user accounts: look-up by login, login bookkeeping."""

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from app.auth.cache import CHANGED_USER
from app.core.auth import Principal
from app.core.errors import Unauthenticated
from app.users.models import UserAccount


async def find_user_by_login_key(session: AsyncSession, login_key: str) -> UserAccount | None:
    return (
        await session.execute(select(UserAccount).where(UserAccount.login_key == login_key))
    ).scalar_one_or_none()


async def own_account(session: AsyncSession, principal: Principal) -> UserAccount:
    """The signed-in user's row, for a request that changes his own account."""
    user = await session.get(UserAccount, principal.user_id)
    if user is None:
        raise Unauthenticated("The session has ended.")
    return user


async def record_login(
    session: AsyncSession, user: UserAccount, now: datetime, new_hash: str | None
) -> None:
    """Note the login (and an upgraded hash) without touching `version` or `updated_at`.

    A login is no edit of the account: it must neither invalidate an administrator's ETag
    nor collide with a concurrent login of the same user (optimistic locking would).
    """
    values: dict[str, object] = {"last_login_at": now, "updated_at": UserAccount.updated_at}
    if new_hash is not None:
        values["password_hash"] = new_hash
    await session.execute(
        update(UserAccount)
        .where(UserAccount.id == user.id)
        .values(**values)
        .execution_options(synchronize_session=False, **{CHANGED_USER: user.id})
    )
    set_committed_value(user, "last_login_at", now)
    if new_hash is not None:
        set_committed_value(user, "password_hash", new_hash)
