"""Every query of the auth feature: accounts at login, sessions, and the throttling counters.

The statements of a login are built once, at import: building a statement and computing its
cache key costs more CPU than SQLite takes to run it. They are Core statements on the tables
(no ORM entities), as nothing of a login needs the unit of work.
"""

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    Select,
    String,
    Table,
    Update,
    bindparam,
    case,
    delete,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import EVENTS, INSERT_EVENT, Actor, EventFields, event_row, events_from
from app.auth.cache import note_changed_user, note_changed_user_in
from app.auth.models import AuthSession, LoginThrottle
from app.core.auth import Principal
from app.core.db import UTCDateTime, direct_in
from app.core.direct import Prepared, Queries, Transaction
from app.core.errors import Unauthenticated
from app.users.models import ACCOUNT_FIELDS, Account, UserAccount
from app.users.status import UserStatus

_USERS = cast(Table, UserAccount.__table__)
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


_RECORD_LOGIN = {flag: Prepared(_record_login_statement(new_hash=flag)) for flag in (False, True)}


@dataclass(frozen=True, slots=True)
class StoredPassword:
    """What a password check needs of an account, and nothing more."""

    user_id: int
    password_hash: str | None


async def get_account(session: AsyncSession, user_id: int) -> UserAccount | None:
    return await session.get(UserAccount, user_id)


async def own_account(session: AsyncSession, principal: Principal) -> UserAccount:
    """The signed-in user's row, for a request that changes his own account."""
    user = await get_account(session, principal.user_id)
    if user is None:
        raise Unauthenticated("The session has ended.")
    return user


def _login_parameters(
    checked: StoredPassword, now: datetime, new_hash: str | None
) -> dict[str, object]:
    """The parameters of `_RECORD_LOGIN` (and of the login statement that contains it)."""
    return {
        "user_id": checked.user_id,
        "checked_hash": checked.password_hash,
        "now": now,
        "new_hash": new_hash,
    }


def own_event_fields(
    user: UserAccount | Account, *, client_ip: str | None, details: dict[str, Any] | None = None
) -> EventFields:
    """What an audit event of something a user did to his own account says beside its action."""
    return {
        "customer_id": user.customer_id,
        "actor": Actor(user.id, user.login),
        "target_type": "user",
        "target_id": user.id,
        "client_ip": client_ip,
        "details": details,
    }


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
    parameters = _login_parameters(checked, now, new_hash)
    # A direct statement in the session's transaction, past the ORM's execution, which it does
    # not need; the cache of signed-in sessions is told of the change here.
    statements = await direct_in(session)
    rows = await statements.all(_RECORD_LOGIN[new_hash is not None], parameters)
    note_changed_user(session.sync_session, checked.user_id)
    return Account(*rows[0]) if rows else None


# -- sessions ---------------------------------------------------------------

_SESSIONS = cast(Table, AuthSession.__table__)
_INSERT_SESSION = Prepared(
    insert(_SESSIONS).values({column.name: bindparam(column.name) for column in _SESSIONS.c})
)


async def add_session(session: AsyncSession, values: dict[str, object]) -> None:
    """Insert one `auth_sessions` row (every column given)."""
    await (await direct_in(session)).run(_INSERT_SESSION, values)


async def read_live_session(
    session: AsyncSession, session_id: str
) -> tuple[UserAccount, datetime, datetime] | None:
    """(account, expires_at, idle_expires_at) of a session that is not revoked and not ended
    by its account (`sessions_valid_from`); timeouts are the caller's to check."""
    found = (
        await session.execute(
            select(UserAccount, AuthSession.expires_at, AuthSession.idle_expires_at)
            .join(AuthSession, AuthSession.user_id == UserAccount.id)
            .where(
                AuthSession.id == session_id,
                AuthSession.revoked_at.is_(None),
                or_(
                    UserAccount.sessions_valid_from.is_(None),
                    AuthSession.authenticated_at >= UserAccount.sessions_valid_from,
                ),
            )
        )
    ).one_or_none()
    return None if found is None else (found[0], found[1], found[2])


async def lock_session(session: AsyncSession, session_id: str) -> AuthSession | None:
    """The session row, locked until the transaction ends (a refresh)."""
    return await session.get(AuthSession, session_id, with_for_update=True)


async def rotate_refresh_token(
    session: AsyncSession,
    session_id: str,
    *,
    presented_hash: str,
    new_hash: str,
    now: datetime,
    idle_expires_at: datetime,
) -> bool:
    """Compare-and-set of the stored refresh token hash: of two concurrent uses of one token
    only one rotates (True); the other finds the hash already changed (False)."""
    rotated = await session.execute(
        update(AuthSession)
        .where(
            AuthSession.id == session_id,
            AuthSession.refresh_token_hash == presented_hash,
            AuthSession.revoked_at.is_(None),
        )
        .values(
            refresh_token_hash=new_hash,
            refresh_count=AuthSession.refresh_count + 1,
            last_refreshed_at=now,
            idle_expires_at=idle_expires_at,
        )
        .execution_options(synchronize_session=False)
    )
    return int(rotated.rowcount) == 1  # type: ignore[attr-defined]


async def revoke_session(
    session: AsyncSession, session_id: str, *, reason: str, now: datetime
) -> None:
    await session.execute(
        update(AuthSession)
        .where(AuthSession.id == session_id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=now, revoked_reason=reason)
        .execution_options(synchronize_session=False)
    )


async def set_authenticated_at(session: AsyncSession, session_id: str, now: datetime) -> None:
    await session.execute(
        update(AuthSession)
        .where(AuthSession.id == session_id)
        .values(authenticated_at=now)
        .execution_options(synchronize_session=False)
    )


def _login_with_session_statement(*, new_hash: bool) -> Select[Any]:
    """PostgreSQL: the login's UPDATE ... RETURNING, the new session's INSERT and the audit
    event's INSERT as one statement (data-modifying CTEs), so a login writes in one round
    trip. Both INSERTs select from the UPDATE's RETURNING: without the account (changed
    during the hash) neither row is written."""
    account = _record_login_statement(new_hash=new_hash).cte("account")
    session_columns = [column.name for column in _SESSIONS.columns]
    new_session = insert(_SESSIONS).from_select(
        session_columns,
        select(
            *(
                account.c.id
                if name == "user_id"
                else bindparam(f"session_{name}", type_=column.type)
                for name, column in zip(session_columns, _SESSIONS.columns, strict=True)
            )
        ),
    )
    event = events_from(
        select(
            bindparam("session_created_at", type_=UTCDateTime()),
            account.c.customer_id,
            account.c.id,
            account.c.login,
            literal("login.succeeded"),
            literal("user"),
            sql_cast(account.c.id, String),
            bindparam("session_client_ip", type_=_SESSIONS.c.client_ip.type),
            literal({}, type_=EVENTS.c.details.type),
        )
    )
    return select(*account.c).add_cte(new_session.cte("new_session"), event.cte("login_event"))


_LOGIN_WITH_SESSION = {
    flag: Prepared(_login_with_session_statement(new_hash=flag)) for flag in (False, True)
}


async def record_login_with_session(
    queries: Transaction,
    checked: StoredPassword,
    now: datetime,
    new_hash: str | None,
    session_row: dict[str, object],
    *,
    dialect: str,
) -> Account | None:
    """`record_login`, the session's `add_session` and the `login.succeeded` event, as direct
    statements in `queries` (on PostgreSQL one statement, on SQLite three run in-process);
    the account, or None (then nothing was written)."""
    parameters = _login_parameters(checked, now, new_hash)
    if dialect == "postgresql":
        parameters.update({f"session_{name}": value for name, value in session_row.items()})
        rows = await queries.all(_LOGIN_WITH_SESSION[new_hash is not None], parameters)
    else:
        rows = await queries.all(_RECORD_LOGIN[new_hash is not None], parameters)
    note_changed_user_in(queries, checked.user_id)
    if not rows:
        return None
    account = Account(*rows[0])
    if dialect != "postgresql":
        await queries.run(_INSERT_SESSION, session_row)
        client_ip = cast(str | None, session_row["client_ip"])
        event = event_row("login.succeeded", **own_event_fields(account, client_ip=client_ip))
        await queries.run(INSERT_EVENT, event)
    return account


# -- throttling counters (`login_throttles`) --------------------------------

_THROTTLES = cast(Table, LoginThrottle.__table__)
_COUNTERS = select(
    _THROTTLES.c.key,
    _THROTTLES.c.failures,
    _THROTTLES.c.window_started_at,
    _THROTTLES.c.updated_at,
)
_ONE_COUNTER = _COUNTERS.where(_THROTTLES.c.key == bindparam("key"))
_TWO_COUNTERS = _COUNTERS.where(
    or_(_THROTTLES.c.key == bindparam("key"), _THROTTLES.c.key == bindparam("other"))
)
_DELETE_COUNTER = delete(_THROTTLES).where(_THROTTLES.c.key == bindparam("key"))


@dataclass(frozen=True, slots=True)
class Counter:
    key: str
    failures: int
    window_started_at: datetime
    updated_at: datetime


async def read_counters(session: AsyncSession, key: str, other: str | None = None) -> list[Counter]:
    """The counters of `key` (and `other`) that exist, in one query."""
    if other is None:
        result = await session.execute(_ONE_COUNTER, {"key": key})
    else:
        result = await session.execute(_TWO_COUNTERS, {"key": key, "other": other})
    return [Counter(*row) for row in result]


# Everything a login reads before the hash, in one statement: the account's password and the
# counters of the login and the client IP, each joined (if it exists) to one row.
_LOGIN_COUNTER = _THROTTLES.alias("login_counter")
_IP_COUNTER = _THROTTLES.alias("ip_counter")
_COUNTER_FIELDS = tuple(field.name for field in fields(Counter))
_READ_BEFORE_LOGIN = Prepared(
    select(
        _USERS.c.id,
        _USERS.c.password_hash,
        *(_LOGIN_COUNTER.c[name] for name in _COUNTER_FIELDS),
        *(_IP_COUNTER.c[name] for name in _COUNTER_FIELDS),
    ).select_from(
        select(literal(1).label("one"))
        .subquery("one_row")
        .outerjoin(_USERS, _USERS.c.login_key == bindparam("login_key"))
        .outerjoin(_LOGIN_COUNTER, _LOGIN_COUNTER.c.key == bindparam("login_counter"))
        .outerjoin(_IP_COUNTER, _IP_COUNTER.c.key == bindparam("ip_counter"))
    )
)


async def read_before_login(
    connection: Queries, login_key: str, login_counter: str, ip_counter: str | None
) -> tuple[StoredPassword | None, list[Counter]]:
    """The stored password of `login_key` (None without such an account) and the counters of
    `login_counter` and `ip_counter` that exist."""
    (row,) = await connection.all(
        _READ_BEFORE_LOGIN,
        {"login_key": login_key, "login_counter": login_counter, "ip_counter": ip_counter},
    )
    stored = None if row[0] is None else StoredPassword(row[0], row[1])
    width = len(_COUNTER_FIELDS)
    counters = [
        Counter(*row[start : start + width]) for start in (2, 2 + width) if row[start] is not None
    ]
    return stored, counters


def _upsert(session: AsyncSession) -> type[postgresql.Insert] | type[sqlite.Insert]:
    dialect = session.get_bind().dialect.name
    return postgresql.Insert if dialect == "postgresql" else sqlite.Insert


async def count_consecutive(
    session: AsyncSession, key: str, *, now: datetime, forget_before: datetime
) -> int:
    """One more failure in a streak, atomically (an upsert with RETURNING): the streak's
    length. A streak whose last failure is older than `forget_before` starts again at 1."""
    forgotten = LoginThrottle.updated_at <= forget_before
    statement = (
        _upsert(session)(LoginThrottle)
        .values(key=key, failures=1, window_started_at=now, updated_at=now)
        .on_conflict_do_update(
            index_elements=["key"],
            set_={
                "failures": case((forgotten, 1), else_=LoginThrottle.failures + 1),
                "window_started_at": case((forgotten, now), else_=LoginThrottle.window_started_at),
                "updated_at": now,
            },
        )
        .returning(LoginThrottle.failures)
    )
    return int((await session.execute(statement)).scalar_one())


async def count_in_window(
    session: AsyncSession, key: str, *, now: datetime, window_started_before: datetime
) -> tuple[int, datetime]:
    """One more attempt in a fixed window, atomically: (attempts in the window, its start).
    A window that started at or before `window_started_before` is over: a new one starts."""
    await session.execute(
        _upsert(session)(LoginThrottle)
        .values(key=key, failures=0, window_started_at=now, updated_at=now)
        .on_conflict_do_nothing(index_elements=["key"])
    )
    expired = LoginThrottle.window_started_at <= window_started_before
    row = (
        await session.execute(
            update(LoginThrottle)
            .where(LoginThrottle.key == key)
            .values(
                failures=case((expired, 1), else_=LoginThrottle.failures + 1),
                window_started_at=case((expired, now), else_=LoginThrottle.window_started_at),
                updated_at=now,
            )
            .returning(LoginThrottle.failures, LoginThrottle.window_started_at)
            .execution_options(synchronize_session=False)
        )
    ).one()
    return int(row[0]), row[1]


async def delete_counter(session: AsyncSession, key: str) -> None:
    await session.execute(_DELETE_COUNTER, {"key": key})


async def delete_counters_untouched_since(session: AsyncSession, moment: datetime) -> int:
    result = await session.execute(
        delete(LoginThrottle)
        .where(LoginThrottle.updated_at < moment)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
