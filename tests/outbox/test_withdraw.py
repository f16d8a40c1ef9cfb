"""Withdrawing queued mails whose link a newer one replaced."""

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.clock import utcnow
from app.core.state import AppState
from app.invitations.mail import user_mail_context
from app.outbox.models import DeliveryState, OutboxMessage
from app.outbox.service import enqueue_email, withdraw_unsent
from app.users.models import UserAccount
from tests.factories import create_customer, create_user


async def _mail(
    session: AsyncSession, state: AppState, user: UserAccount, kind: str
) -> OutboxMessage:
    return await enqueue_email(
        session,
        kind=kind,
        recipient=user.email,
        language="de",
        user_id=user.id,
        context={
            **user_mail_context(state.settings, user),
            "link": "https://portal.example.com/password-setup#token=x",
            "expires_at": "morgen",
            "locked": False,
            "changed_at": "heute",
        },
    )


async def test_only_unclaimed_pending_mails_of_the_kinds_are_withdrawn(
    session: AsyncSession, state: AppState
) -> None:
    user = await create_user(session, state, await create_customer(session))
    pending = await _mail(session, state, user, "invitation")
    claimed = await _mail(session, state, user, "invitation")
    claimed.locked_until = utcnow() + timedelta(minutes=5)
    sent = await _mail(session, state, user, "password_reset")
    sent.state = DeliveryState.SENT
    other_kind = await _mail(session, state, user, "password_changed")
    await session.flush()

    assert await withdraw_unsent(session, user.id, ("invitation", "password_reset")) == 1

    left = set(
        (await session.execute(select(OutboxMessage.id).where(OutboxMessage.user_id == user.id)))
        .scalars()
        .all()
    )
    assert left == {claimed.id, sent.id, other_kind.id}
    assert pending.id not in left
