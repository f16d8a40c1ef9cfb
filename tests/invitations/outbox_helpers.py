"""Reading what the password flows queued in the outbox."""

import re
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.invitations.models import TokenPurpose
from app.invitations.tokens import issue_token
from app.outbox.models import DeliveryState, OutboxMessage

TOKEN_RE = re.compile(r"#token=([A-Za-z0-9_-]+)")


async def queued_mails(
    session: AsyncSession, user_id: int | None = None, kind: str | None = None
) -> list[OutboxMessage]:
    query = select(OutboxMessage).order_by(OutboxMessage.id)
    if user_id is not None:
        query = query.where(OutboxMessage.user_id == user_id)
    if kind is not None:
        query = query.where(OutboxMessage.kind == kind)
    return list((await session.execute(query.execution_options(populate_existing=True))).scalars())


async def mark_all_sent(session: AsyncSession) -> None:
    """What a dispatcher would do between two requests: every queued mail is out."""
    await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.state == DeliveryState.PENDING)
        .values(state=DeliveryState.SENT)
    )


def token_in(message: OutboxMessage) -> str:
    """The token of the link in a mail (the text and the HTML body carry the same one)."""
    found = TOKEN_RE.search(message.body_text)
    assert found is not None, message.body_text
    assert message.body_html is not None
    assert f"#token={found.group(1)}" in message.body_html
    return found.group(1)


async def new_token_for(
    session: AsyncSession, user_id: int, purpose: TokenPurpose, hours: int = 24
) -> str:

    token, _row = await issue_token(session, user_id, purpose, timedelta(hours=hours))
    return token
