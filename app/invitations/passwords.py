"""Password setup through a mailed link, and self-service reset requests.

A link's token is checked without being used (`inspect`, mail scanners open links) and used
exactly once when the password is set. A reset request always gets the same answer, whether
the login exists, may reset, or asked too often: nothing tells a stranger which logins exist.
"""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import Actor, record_event
from app.auth.ratelimit import count_attempt
from app.auth.throttle import clear_login_failures
from app.core.clock import utcnow
from app.core.permissions import Role
from app.core.state import AppState
from app.invitations.errors import PasswordMismatch, TokenInvalid
from app.invitations.mail import enqueue_password_changed_mail, void_links
from app.invitations.models import PasswordToken, TokenPurpose
from app.invitations.repository import (
    activate_pending_customer,
    find_user_by_login,
    get_user,
    mark_invitation_accepted,
)
from app.invitations.service import send_invitation, send_reset_link
from app.invitations.tokens import consume_token, find_usable_token
from app.users.models import UserAccount
from app.users.status import StatusEvent, UserStatus, apply_event

logger = logging.getLogger("app.invitations")

RESET_WINDOW = timedelta(hours=1)

# Which accounts a token of each purpose may still serve, and the status event it causes
# (None: the status stays). Anything else (disabled, expired, ...) makes the link invalid.
_USABLE: dict[TokenPurpose, dict[UserStatus, StatusEvent | None]] = {
    TokenPurpose.INVITATION: {UserStatus.INVITED: StatusEvent.ACCEPT_INVITATION},
    TokenPurpose.RESET: {UserStatus.ACTIVE: None, UserStatus.LOCKED: StatusEvent.COMPLETE_RESET},
}


@dataclass(frozen=True)
class TokenInfo:
    """What the password page shows before the user types: whose link, valid until when."""

    purpose: TokenPurpose
    login: str
    first_name: str
    last_name: str
    expires_at: datetime


def _account_may_use(user: UserAccount | None, purpose: TokenPurpose, now: datetime) -> bool:
    if user is None or user.status not in _USABLE[purpose]:
        return False
    return user.expires_at is None or user.expires_at > now


async def _usable_token(session: AsyncSession, token: str) -> tuple[PasswordToken, UserAccount]:
    row = await find_usable_token(session, token)
    if row is None:
        raise TokenInvalid("The link is unknown, already used or expired.")
    user = await get_user(session, row.user_id)
    if user is None or not _account_may_use(user, row.purpose, utcnow()):
        raise TokenInvalid("The link is unknown, already used or expired.")
    return row, user


async def inspect_token(session: AsyncSession, token: str) -> TokenInfo:
    """The link's purpose and person, without using it up."""
    row, user = await _usable_token(session, token)
    return TokenInfo(
        purpose=row.purpose,
        login=user.login,
        first_name=user.first_name,
        last_name=user.last_name,
        expires_at=row.expires_at,
    )


async def set_password_with_token(
    session: AsyncSession,
    state: AppState,
    *,
    token: str,
    password: str,
    password_confirmation: str,
    client_ip: str | None = None,
) -> UserAccount:
    """Set the password the link was sent for; the link dies, sessions end, status moves.

    Everything that can refuse the request (mismatch, policy, a dead link) is checked before
    the token is used, so a typo does not cost the user his link. The password is hashed
    before the token is claimed, so the claim's row lock is held only for the commit.
    """
    settings = state.settings
    if password != password_confirmation:
        raise PasswordMismatch("The password and its repetition differ.")
    _row, user = await _usable_token(session, token)
    user.check_new_password(password, brand=settings.brand_name)
    password_hash = await state.hasher.hash(password)
    claimed = await consume_token(session, token)
    if claimed is None:
        # Another request used the link in the meantime (or it expired this very moment).
        raise TokenInvalid("The link is unknown, already used or expired.")
    purpose = claimed[1]
    now = utcnow()
    # Re-read the account: it may have been disabled while the password was being hashed.
    await session.refresh(user)
    if user.status not in _USABLE[purpose]:
        raise TokenInvalid("The link is unknown, already used or expired.")
    before, event = user.status, _USABLE[purpose][user.status]
    if event is not None:
        apply_event(user, event, now)
    user.password_hash = password_hash
    user.password_set_at = now
    user.end_sessions(now)
    await void_links(session, user.id, now)
    # Whoever set the password knows it now: earlier failed logins no longer count.
    await clear_login_failures(session, user.login_key)
    await session.flush()
    activated = False
    if purpose == TokenPurpose.INVITATION:
        await mark_invitation_accepted(session, user.id, now)
        if user.role == Role.CUSTOMER_PORTAL_ADMIN:
            activated = await activate_pending_customer(session, user.customer_id, now)
    else:
        await enqueue_password_changed_mail(session, settings, user, now)
    await record_event(
        session,
        "password.set",
        customer_id=user.customer_id,
        actor=Actor(user.id, user.login),
        target_type="user",
        target_id=user.id,
        client_ip=client_ip,
        details={"purpose": str(purpose), "from": str(before), "to": str(user.status)},
    )
    if activated:
        await record_event(
            session,
            "customer.activated",
            customer_id=user.customer_id,
            actor=Actor(user.id, user.login),
            target_type="customer",
            target_id=user.customer_id,
            client_ip=client_ip,
        )
    return user


def _throttle_key(kind: str, value: str) -> str:
    return f"reset:{kind}:{value}"[:100]


async def request_password_reset(
    session: AsyncSession, state: AppState, *, login: str, client_ip: str | None
) -> None:
    """Mail a reset or a fresh invitation link if the account may have one; else nothing.

    Counted per login and per client IP in every case (unknown logins too); beyond either
    limit nothing is sent, and the caller's answer stays the same.
    """
    settings, now = state.settings, utcnow()
    login_key = UserAccount.key_for(login.strip())
    per_login, _ = await count_attempt(
        session, _throttle_key("login", login_key), window=RESET_WINDOW, now=now
    )
    per_ip = 0
    if client_ip:
        per_ip, _ = await count_attempt(
            session, _throttle_key("ip", client_ip), window=RESET_WINDOW, now=now
        )
    user = await find_user_by_login(session, login.strip())
    if user is None or (user.expires_at is not None and user.expires_at <= now):
        return
    throttled = (
        per_login > settings.password_reset_per_login_per_hour
        or per_ip > settings.password_reset_per_ip_per_hour
    )
    if throttled:
        logger.info("password reset throttled", extra={"user_id": user.id})
        await record_event(
            session,
            "password.reset_throttled",
            customer_id=user.customer_id,
            target_type="user",
            target_id=user.id,
            client_ip=client_ip,
        )
        return
    if user.status in (UserStatus.ACTIVE, UserStatus.LOCKED):
        await send_reset_link(
            session,
            settings,
            user,
            locked=user.status == UserStatus.LOCKED,
            reason="requested",
            client_ip=client_ip,
        )
    elif user.status == UserStatus.INVITED:
        # The guide tells invited users whose link expired to ask for a new one this way.
        apply_event(user, StatusEvent.RESEND_INVITATION, now)
        await send_invitation(session, settings, user, client_ip=client_ip)
        await record_event(
            session,
            "password.reset_requested",
            customer_id=user.customer_id,
            target_type="user",
            target_id=user.id,
            client_ip=client_ip,
            details={"reason": "requested", "sent": "invitation"},
        )
