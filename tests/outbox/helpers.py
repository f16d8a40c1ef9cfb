from email.message import EmailMessage

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.state import AppState
from app.customers.models import Customer
from app.invitations.models import Invitation
from app.invitations.service import send_invitation
from app.outbox.models import OutboxMessage
from app.users.models import Language, UserAccount
from app.users.status import UserStatus
from tests.factories import create_user


async def invite(
    session: AsyncSession,
    state: AppState,
    customer: Customer,
    *,
    language: Language = Language.DE,
    first_name: str = "Erika",
) -> tuple[UserAccount, Invitation]:
    """An invited user whose invitation mail waits in the outbox (as the API creates it)."""
    user = await create_user(
        session,
        state,
        customer,
        status=UserStatus.INVITED,
        password=None,
        language=language,
        first_name=first_name,
    )
    invitation = await send_invitation(session, state.settings, user)
    return user, invitation


async def outbox_row(session: AsyncSession, message_id: int | None) -> OutboxMessage:
    assert message_id is not None
    row = await session.get(OutboxMessage, message_id, populate_existing=True)
    assert row is not None
    return row


async def count_outbox(session: AsyncSession) -> int:
    return (await session.execute(select(func.count()).select_from(OutboxMessage))).scalar_one()


def parts(message: EmailMessage) -> tuple[str, str]:
    """(text, HTML) of a received multipart/alternative mail."""
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert isinstance(text, EmailMessage)
    assert isinstance(html, EmailMessage)
    return str(text.get_content()), str(html.get_content())
