"""The outbox dispatcher: claims due messages, sends them, records how it went.

One round: claim a small batch in a short transaction (a lease in `locked_until`), commit,
send each message outside any transaction (SMTP may take seconds; no lock or connection is
held meanwhile), then record each outcome in its own short transaction:

- handed over: `sent` with `sent_at`;
- transient failure (server down, 4xx): due again after an exponential backoff with jitter;
- permanent failure (5xx, unbuildable) or the last allowed attempt failed: `failed`.

A dispatcher that dies between hand-over and bookkeeping leaves a lease that runs out; the
message is then sent again with the same Message-ID. That is the one case of a duplicate, and
the reason a mail is never lost instead.
"""

import asyncio
import logging
import secrets
from datetime import datetime, timedelta

from app.core.clock import utcnow
from app.core.config import Settings
from app.core.state import AppState
from app.outbox import repository
from app.outbox.backends import MailBackend, backend_for
from app.outbox.errors import DeliveryError, PermanentDeliveryError, TransientDeliveryError
from app.outbox.mime import build_email
from app.outbox.models import OutboxMessage

logger = logging.getLogger("app.outbox")
_random = secrets.SystemRandom()


def retry_delay(settings: Settings, attempts: int) -> timedelta:
    """Backoff after the `attempts`-th failed attempt: base·2^(n-1), capped, minus up to 25 %.

    The jitter spreads retries of many messages that failed together (server outage); keeping
    it under a quarter keeps each delay longer than the previous one until the cap.
    """
    exponent = min(max(attempts - 1, 0), 32)
    delay = min(settings.outbox_retry_base * (1 << exponent), settings.outbox_retry_max)
    return delay * (1 - _random.uniform(0, 0.25))


def safe_error(settings: Settings, error: BaseException) -> str:
    """The error text for `last_error`: one line, short, and never the SMTP password."""
    text = " ".join(str(error).split()) or type(error).__name__
    if settings.smtp_password:
        text = text.replace(settings.smtp_password, "***")
    return text[:500]


async def _record_outcome(
    state: AppState, message: OutboxMessage, lease_until: datetime, error: DeliveryError | None
) -> None:
    settings = state.settings
    now = utcnow()
    log = {"outbox_id": message.id, "kind": message.kind, "attempt": message.attempts}
    async with state.database.sessionmaker.begin() as session:
        if error is None:
            await repository.mark_sent(session, message.id, now=now)
            logger.info("mail sent", extra=log)
            return
        permanent = isinstance(error, PermanentDeliveryError)
        give_up = permanent or message.attempts >= settings.outbox_max_attempts
        retry_at = None if give_up else now + retry_delay(settings, message.attempts)
        recorded = await repository.mark_attempt_failed(
            session,
            message.id,
            lease_until=lease_until,
            error=safe_error(settings, error),
            retry_at=retry_at,
        )
    if not recorded:
        logger.warning("outbox lease lost before the outcome was recorded", extra=log)
    elif give_up:
        logger.warning(
            "mail failed for good",
            extra={**log, "reason": "permanent" if permanent else "max_attempts"},
        )
    else:
        logger.info("mail delivery deferred", extra={**log, "retry_at": retry_at})


async def _deliver(backend: MailBackend, message: OutboxMessage, mail_from: str) -> None:
    await backend.send(build_email(message, mail_from))


async def dispatch_once(state: AppState, backend: MailBackend | None = None) -> int:
    """Run one round; returns how many messages it attempted (0: nothing was due)."""
    settings = state.settings
    backend = backend or backend_for(settings)
    now = utcnow()
    lease_until = now + settings.outbox_claim_lease
    async with state.database.sessionmaker.begin() as session:
        messages = await repository.claim_due_messages(
            session, now=now, lease_until=lease_until, limit=settings.outbox_batch_size
        )
    for message in messages:
        error: DeliveryError | None = None
        try:
            await _deliver(backend, message, settings.mail_from)
        except DeliveryError as exc:
            error = exc
        except Exception as exc:
            # A bug must not strand the message under its lease; it is retried like an outage.
            logger.exception("mail backend raised", extra={"outbox_id": message.id})
            error = TransientDeliveryError(f"backend error: {type(exc).__name__}")
        await _record_outcome(state, message, lease_until, error)
    return len(messages)


async def run_dispatcher(state: AppState) -> None:
    """The dispatcher loop: a round, then a short pause unless the batch was full.

    A failing round (database unreachable, a bug) is logged and the loop goes on; only
    cancellation ends it.
    """
    settings = state.settings
    backend = backend_for(settings)
    while True:
        try:
            attempted = await dispatch_once(state, backend)
        except Exception:
            logger.exception("outbox dispatch round failed")
            attempted = 0
        if attempted < settings.outbox_batch_size:
            await asyncio.sleep(settings.dispatcher_interval)
