"""Sending invitations and reset links: a token, a mail in the outbox, the invitation record."""

from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import Actor, record_event
from app.core.clock import utcnow
from app.core.config import Settings
from app.invitations import repository
from app.invitations.mail import enqueue_password_mail
from app.invitations.models import Invitation, TokenPurpose
from app.invitations.tokens import issue_token
from app.users.models import UserAccount


async def send_invitation(
    session: AsyncSession,
    settings: Settings,
    user: UserAccount,
    *,
    actor: Actor | None = None,
    client_ip: str | None = None,
) -> Invitation:
    """Issue a fresh invitation link (voiding older ones) and queue the mail.

    The caller moves the account's status (create, resend, scheduled dispatch, enable).
    """
    now = utcnow()
    token, row = await issue_token(
        session, user.id, TokenPurpose.INVITATION, settings.invitation_ttl
    )
    message = await enqueue_password_mail(
        session, settings, user, kind="invitation", token=token, expires_at=row.expires_at
    )
    invitation = await repository.get_invitation(session, user.id)
    if invitation is None:
        invitation = Invitation(user_id=user.id, sent_count=0)
    invitation.scheduled_for = None
    invitation.sent_count += 1
    invitation.sent_at = now
    invitation.expires_at = row.expires_at
    invitation.outbox_message_id = message.id
    await repository.save_invitation(session, invitation)
    await record_event(
        session,
        "invitation.sent",
        customer_id=user.customer_id,
        actor=actor,
        target_type="user",
        target_id=user.id,
        client_ip=client_ip,
        details={"sent_count": invitation.sent_count},
    )
    return invitation


async def send_reset_link(
    session: AsyncSession,
    settings: Settings,
    user: UserAccount,
    *,
    locked: bool = False,
    reason: str | None = None,
    client_ip: str | None = None,
) -> None:
    """Issue a reset link (1 h by default) and queue the mail; `locked` explains why.

    `reason` for the audit log: `locked` (the lock sent it) or `requested` (the owner asked).
    """
    token, row = await issue_token(session, user.id, TokenPurpose.RESET, settings.reset_ttl)
    await enqueue_password_mail(
        session,
        settings,
        user,
        kind="password_reset",
        token=token,
        expires_at=row.expires_at,
        locked=locked,
    )
    await record_event(
        session,
        "password.reset_requested",
        customer_id=user.customer_id,
        target_type="user",
        target_id=user.id,
        client_ip=client_ip,
        details={"reason": reason or ("locked" if locked else "requested"), "sent": "reset"},
    )
