"""Enqueueing mail: render it and add it to the outbox in the caller's transaction.

This is the only way the service sends mail. Because the message is a row written in the same
transaction as the change that causes it, a rollback takes the mail with it and a commit
guarantees the dispatcher will deliver it, even if the process dies right after.
"""

from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.clock import utcnow
from app.outbox import repository
from app.outbox.models import DeliveryState, OutboxMessage

LANGUAGES = ("de", "en")


@cache
def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("app.outbox", "templates"),
        autoescape=select_autoescape(enabled_extensions=("html.j2",), default=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render_email(kind: str, language: str, context: dict[str, Any]) -> tuple[str, str, str]:
    """(subject, text body, HTML body) of mail `kind` in `language` (German if unknown)."""
    language = language if language in LANGUAGES else "de"
    env = _environment()
    subject = env.get_template(f"{kind}/{language}.subject.j2").render(context).strip()
    text = env.get_template(f"{kind}/{language}.txt.j2").render(context)
    html = env.get_template(f"{kind}/{language}.html.j2").render(context)
    return " ".join(subject.split()), text, html


async def enqueue_email(
    session: AsyncSession,
    *,
    kind: str,
    recipient: str,
    language: str,
    context: dict[str, Any],
    user_id: int | None = None,
) -> OutboxMessage:
    """Render mail `kind` and add it to the outbox; it is sent after the transaction commits."""
    subject, text, html = render_email(kind, language, context)
    message = OutboxMessage(
        kind=kind,
        user_id=user_id,
        recipient=recipient,
        subject=subject,
        body_text=text,
        body_html=html,
        state=DeliveryState.PENDING,
        attempts=0,
        next_attempt_at=utcnow(),
        created_at=utcnow(),
    )
    return await repository.add_message(session, message)


async def withdraw_unsent(session: AsyncSession, user_id: int, kinds: tuple[str, ...]) -> int:
    """Drop queued mails of `kinds` for a user that no dispatcher holds yet.

    A newer link makes the older ones dead; mailing them would only confuse the reader.
    A message a dispatcher has already claimed is left to it.
    """
    return await repository.delete_unclaimed_messages(session, user_id, kinds, now=utcnow())
