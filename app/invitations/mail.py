"""The mails that carry a password link: invitation and password reset."""

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.invitations.tokens import void_tokens
from app.outbox.models import OutboxMessage
from app.outbox.service import enqueue_email, withdraw_unsent
from app.users.models import UserAccount


def password_link(settings: Settings, token: str) -> str:
    """The mailed link; the token sits in the fragment, which browsers never send to a server."""
    return f"{settings.frontend_url}{settings.password_setup_path}#token={token}"


def format_time(moment: datetime, language: str) -> str:
    if language == "en":
        return moment.strftime("%Y-%m-%d %H:%M UTC")
    return moment.strftime("%d.%m.%Y %H:%M UTC")


def user_mail_context(settings: Settings, user: UserAccount) -> dict[str, object]:
    """What every mail to a user names: brand, portal, login ID, the person."""
    return {
        "brand_name": settings.brand_name,
        "portal_url": settings.portal_url,
        "login": user.login,
        "first_name": user.first_name,
        "last_name": user.last_name,
    }


async def enqueue_password_changed_mail(
    session: AsyncSession, settings: Settings, user: UserAccount, changed_at: datetime
) -> OutboxMessage:
    """Tell the owner that his password was changed or reset (in case it was not him)."""
    language = str(user.language)
    return await enqueue_email(
        session,
        kind="password_changed",
        recipient=user.email,
        language=language,
        user_id=user.id,
        context={
            **user_mail_context(settings, user),
            "changed_at": format_time(changed_at, language),
        },
    )


PASSWORD_MAIL_KINDS = ("invitation", "password_reset")


async def void_links(session: AsyncSession, user_id: int, now: datetime) -> None:
    """Kill every open password link of the user and withdraw the mails still to carry one.

    For a disabled or deleted account, or one whose password was just set: a mail that
    went out afterwards would only hand over a dead link.
    """
    await void_tokens(session, user_id, now)
    await withdraw_unsent(session, user_id, PASSWORD_MAIL_KINDS)


async def enqueue_password_mail(
    session: AsyncSession,
    settings: Settings,
    user: UserAccount,
    *,
    kind: str,
    token: str,
    expires_at: datetime,
    locked: bool = False,
) -> OutboxMessage:
    """Queue mail `kind` (`invitation` or `password_reset`) with the link for `token`.

    The new token voided the older links, so their mails still waiting are withdrawn.
    """
    language = str(user.language)
    await withdraw_unsent(session, user.id, PASSWORD_MAIL_KINDS)
    return await enqueue_email(
        session,
        kind=kind,
        recipient=user.email,
        language=language,
        user_id=user.id,
        context={
            **user_mail_context(settings, user),
            "link": password_link(settings, token),
            "expires_at": format_time(expires_at, language),
            "locked": locked,
        },
    )
