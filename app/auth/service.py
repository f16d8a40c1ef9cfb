"""Login, refresh and logout: password checks behind the throttle, sessions, audit events."""

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import SYSTEM, Actor, record_event
from app.auth.errors import InvalidCredentials
from app.auth.repository import (
    get_account,
    own_event_fields,
    read_before_login,
    record_login,
    record_login_with_session,
)
from app.auth.sessions import (
    IssuedTokens,
    issued_tokens,
    may_log_in,
    new_session_row,
    revoke_session,
    start_session,
)
from app.auth.throttle import (
    check_throttle,
    clear_login_failures,
    ip_throttle_key,
    judge_counters,
    login_throttle_key,
    record_login_failure,
    refuse_if_throttled,
)
from app.core.auth import Principal
from app.core.clock import utcnow
from app.core.db import UnitOfWork
from app.core.state import AppState
from app.invitations.service import send_reset_link
from app.users.models import Account, UserAccount
from app.users.status import StatusEvent, UserStatus, allowed, apply_event

# Whoever types a wrong password is not known to be the account's owner.
UNKNOWN_ACTOR = Actor(None, None)


async def record_own_event(
    session: AsyncSession,
    action: str,
    user: UserAccount | Account,
    *,
    client_ip: str | None,
    details: dict[str, Any] | None = None,
) -> None:
    """An audit event of something a user did to his own account (login, password change)."""
    await record_event(
        session, action, **own_event_fields(user, client_ip=client_ip, details=details)
    )


async def guard_password_check(
    state: AppState,
    session: AsyncSession,
    *,
    login_key: str,
    client_ip: str | None,
    now: datetime,
) -> None:
    """Refuse (429 with `Retry-After`) before any hashing while the login or the IP is throttled."""
    refuse_if_throttled(
        await check_throttle(
            session, state.settings, login_key=login_key, client_ip=client_ip, now=now
        )
    )


async def note_failed_password(
    state: AppState,
    session: AsyncSession,
    *,
    login_key: str,
    user: UserAccount | None,
    client_ip: str | None,
    now: datetime,
    reason: str,
) -> None:
    """Count the failure, record `login.failed`, and lock the account at the threshold."""
    settings = state.settings
    failures = await record_login_failure(
        session, settings, login_key=login_key, client_ip=client_ip, now=now
    )
    await record_event(
        session,
        "login.failed",
        customer_id=user.customer_id if user else None,
        actor=UNKNOWN_ACTOR,
        target_type="user" if user else None,
        target_id=user.id if user else None,
        client_ip=client_ip,
        details={"reason": reason, "consecutive_failures": failures},
    )
    # `==`: of concurrent failures exactly one sees the threshold, so one lock and one mail.
    if user is not None and failures == settings.login_failures_before_lock:
        await lock_after_failures(state, session, user, failures, client_ip=client_ip, now=now)


async def lock_after_failures(
    state: AppState,
    session: AsyncSession,
    user: UserAccount,
    failures: int,
    *,
    client_ip: str | None,
    now: datetime,
) -> None:
    """Lock an active account and mail its owner a reset link (the self-service unlock)."""
    if not allowed(user.status, StatusEvent.LOCK):
        return
    transition = apply_event(user, StatusEvent.LOCK, now)
    await session.flush()
    await record_event(
        session,
        "user.locked",
        customer_id=user.customer_id,
        actor=SYSTEM,
        target_type="user",
        target_id=user.id,
        client_ip=client_ip,
        details={
            "reason": "failed_logins",
            "consecutive_failures": failures,
            "from": transition.before,
        },
    )
    await send_reset_link(session, state.settings, user, locked=True, client_ip=client_ip)


async def log_in(
    state: AppState,
    unit: UnitOfWork,
    *,
    login: str,
    password: str,
    client_ip: str | None,
    user_agent: str | None,
) -> tuple[IssuedTokens, Account]:
    """A new session for the right password of an account that may log in.

    Everything else, an unknown login included, costs one password hash and answers the same
    `401 invalid_credentials`.
    """
    now = utcnow()
    login_key = UserAccount.key_for(login)
    # The reads before the hash are one statement, outside the request's unit of work
    # (`Database.direct`), whose connection goes back to the pool before the hash: none (on
    # SQLite the only one) is held while the password is hashed, so other requests go on
    # meanwhile. The writes after the hash are the unit of work's.
    async with state.database.direct() as connection:
        stored, counters = await read_before_login(
            connection,
            login_key,
            login_throttle_key(login_key),
            ip_throttle_key(client_ip) if client_ip is not None else None,
        )
    throttle = judge_counters(state.settings, counters, login_key=login_key, now=now)
    refuse_if_throttled(throttle)
    # Without an account (or a password) the hasher checks a dummy hash: same time.
    stored_hash = stored.password_hash if stored is not None else None
    matches, new_hash = await state.hasher.verify(password, stored_hash)
    if stored is not None and matches:
        # Writes the login only if the account may still log in with the hash just checked.
        if not throttle.login_counted:
            # Without a counter to reset, a login writes the account's login, its session and
            # its audit event: direct statements of the unit of work, without the ORM
            # session's machinery (on PostgreSQL one statement: BEGIN, it and COMMIT).
            opened = utcnow()
            row, refresh_token = new_session_row(
                state, stored.user_id, client_ip=client_ip, user_agent=user_agent, now=opened
            )
            account = await record_login_with_session(
                unit.queries,
                stored,
                now,
                new_hash,
                row,
                dialect=state.database.dialect,
            )
            if account is not None:
                return issued_tokens(state, account, row, refresh_token, opened), account
            # Nothing was written. The refusal below writes in the session, which on SQLite
            # needs the process's one connection back.
            await unit.discard_queries()
        else:
            session = unit.session
            account = await record_login(session, stored, now, new_hash)
            if account is not None:
                await clear_login_failures(session, login_key)
                tokens = await start_session(
                    state, session, account, client_ip=client_ip, user_agent=user_agent
                )
                await record_own_event(session, "login.succeeded", account, client_ip=client_ip)
                return tokens, account
    # Read again in the request's unit of work: the account may have changed meanwhile.
    session = unit.session
    user = await get_account(session, stored.user_id) if stored is not None else None
    if user is None:
        reason = "unknown_login"
    elif user.status != UserStatus.ACTIVE or not may_log_in(user, now):
        reason = "account_not_active"
    else:
        reason = "wrong_password"  # also when the password changed while it was being checked
    await note_failed_password(
        state,
        session,
        login_key=login_key,
        user=user,
        client_ip=client_ip,
        now=now,
        reason=reason,
    )
    raise InvalidCredentials()


async def log_out(session: AsyncSession, principal: Principal, *, client_ip: str | None) -> None:
    """End the caller's session: its access and refresh tokens stop working at once."""
    await revoke_session(session, principal.session_id, reason="logout")
    await record_own_event(session, "logout", principal.user, client_ip=client_ip)
