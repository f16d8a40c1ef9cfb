"""Status changes by a portal admin: disable, enable, unlock, resend the invitation.

Each goes through `status.apply_event()`; what the table does not allow answers 409
`invalid_transition` before anything changed.
"""

from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.ratelimit import enforce_limit
from app.auth.throttle import clear_login_failures
from app.core.clock import utcnow
from app.core.config import Settings
from app.invitations.mail import void_links
from app.invitations.service import send_invitation
from app.users import repository
from app.users.repository import UserRow
from app.users.service import (
    AdminContext,
    ensure_customer_may_invite,
    ensure_not_last_admin,
    ensure_not_self,
    load_user,
)
from app.users.status import StatusEvent, UserStatus, apply_event, target_of


async def disable_user(
    session: AsyncSession, ctx: AdminContext, user_id: int, if_match: str | None
) -> UserRow:
    """Any status but `disabled` -> `disabled`; sessions end and open links die at once."""
    user = await load_user(session, ctx, user_id, if_match)
    ensure_not_self(ctx, user, "disable")
    target_of(user.status, StatusEvent.DISABLE, has_password=user.password_hash is not None)
    await ensure_not_last_admin(session, user)
    now = utcnow()
    transition = apply_event(user, StatusEvent.DISABLE, now)
    user.end_sessions(now)
    await void_links(session, user.id, now)
    await session.flush()
    await ctx.record(
        session, "user.disabled", user, **{"from": transition.before, "to": transition.after}
    )
    return await repository.get_user_row(session, user.id)


async def enable_user(
    session: AsyncSession,
    settings: Settings,
    ctx: AdminContext,
    user_id: int,
    if_match: str | None,
) -> UserRow:
    """`disabled`/`expired` -> `active` with a password, else `invited` with a new link.

    A planned end that has already passed is cleared: re-enabling is the admin's decision
    to grant access again (he may set a new `expires_at` afterwards).
    """
    user = await load_user(session, ctx, user_id, if_match)
    has_password = user.password_hash is not None
    target = target_of(user.status, StatusEvent.ENABLE, has_password=has_password)
    if target == UserStatus.INVITED:
        await ensure_customer_may_invite(session, ctx.customer_id)
    now = utcnow()
    transition = apply_event(user, StatusEvent.ENABLE, now)
    details: dict[str, object] = {"from": transition.before, "to": transition.after}
    if user.expires_at is not None and user.expires_at <= now:
        user.expires_at = None
        details["expires_at_cleared"] = True
    await session.flush()
    await ctx.record(session, "user.enabled", user, **details)
    if transition.needs_new_invitation:
        await send_invitation(session, settings, user, actor=ctx.actor, client_ip=ctx.client_ip)
    return await repository.get_user_row(session, user.id)


async def unlock_user(
    session: AsyncSession, ctx: AdminContext, user_id: int, if_match: str | None
) -> UserRow:
    """`locked` -> `active`: the owner may log in with his password again."""
    user = await load_user(session, ctx, user_id, if_match)
    transition = apply_event(user, StatusEvent.UNLOCK, utcnow())
    # Unlocked means he may try again now, not after the delays of his failed attempts.
    await clear_login_failures(session, user.login_key)
    await session.flush()
    await ctx.record(
        session, "user.unlocked", user, **{"from": transition.before, "to": transition.after}
    )
    return await repository.get_user_row(session, user.id)


async def resend_invitation(
    session: AsyncSession, settings: Settings, ctx: AdminContext, user_id: int
) -> UserRow:
    """A new invitation link (older ones die) for a `scheduled` or `invited` account.

    Limited per account (default 3 an hour, 10 a day) so nobody floods a mailbox; the
    counters are checked before anything changes and stay counted when refused.
    """
    user = await load_user(session, ctx, user_id)
    target_of(user.status, StatusEvent.RESEND_INVITATION, has_password=False)
    await ensure_customer_may_invite(session, ctx.customer_id)
    for window, limit in (
        (timedelta(hours=1), settings.invitation_resend_per_hour),
        (timedelta(days=1), settings.invitation_resend_per_day),
    ):
        key = f"invite:user:{user.id}:{int(window.total_seconds())}"
        await enforce_limit(session, key, limit=limit, window=window)
    transition = apply_event(user, StatusEvent.RESEND_INVITATION, utcnow())
    await session.flush()
    await ctx.record(
        session, "invitation.resent", user, **{"from": transition.before, "to": transition.after}
    )
    await send_invitation(session, settings, user, actor=ctx.actor, client_ip=ctx.client_ip)
    return await repository.get_user_row(session, user.id)
