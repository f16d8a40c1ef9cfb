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
import contextlib
import logging
import secrets
from collections.abc import Coroutine, Sequence
from datetime import datetime, timedelta
from typing import Any

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
# Longest pause between rounds while rounds keep failing (seconds).
FAILURE_PAUSE_MAX = 60.0


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
    log: dict[str, object] = {
        "outbox_id": message.id,
        "kind": message.kind,
        "attempt": message.attempts,
    }
    if error is None:
        async with state.database.sessionmaker.begin() as session:
            await repository.mark_sent(session, message.id, now=now)
        logger.info("mail sent", extra=log)
        return
    reason = safe_error(settings, error)
    log["error"] = reason
    async with state.database.sessionmaker.begin() as session:
        permanent = isinstance(error, PermanentDeliveryError)
        give_up = permanent or message.attempts >= settings.outbox_max_attempts
        retry_at = None if give_up else now + retry_delay(settings, message.attempts)
        recorded = await repository.mark_attempt_failed(
            session,
            message.id,
            lease_until=lease_until,
            error=reason,
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


async def _attempt(
    state: AppState, backend: MailBackend, message: OutboxMessage, lease_until: datetime
) -> None:
    error: DeliveryError | None = None
    try:
        await backend.send(build_email(message, state.settings.mail_from))
    except DeliveryError as exc:
        error = exc
    except Exception as exc:
        # A bug must not strand the message under its lease; it is retried like an outage.
        logger.exception("mail backend raised", extra={"outbox_id": message.id})
        error = TransientDeliveryError(f"backend error: {type(exc).__name__}")
    await _record_outcome(state, message, lease_until, error)


async def _release(
    state: AppState, messages: Sequence[OutboxMessage], lease_until: datetime
) -> None:
    async with state.database.sessionmaker.begin() as session:
        await repository.release_claims(session, [m.id for m in messages], lease_until)


async def _complete_even_if_cancelled(work: Coroutine[Any, Any, None]) -> None:
    """Run `work` to its end even when the caller is cancelled (shutdown), then re-raise.

    A mail handed over but not recorded would be sent again after its lease runs out.
    """
    task = asyncio.ensure_future(work)
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await task
        raise


async def dispatch_once(state: AppState, backend: MailBackend | None = None) -> int:
    """Run one round; returns how many messages it attempted (0: nothing was due).

    Cancelled (shutdown), it finishes the message in hand, gives the rest of the batch back,
    and re-raises.
    """
    settings = state.settings
    backend = backend or backend_for(settings)
    now = utcnow()
    lease_until = now + settings.outbox_claim_lease
    async with state.database.sessionmaker.begin() as session:
        messages = await repository.claim_due_messages(
            session, now=now, lease_until=lease_until, limit=settings.outbox_batch_size
        )
    finished = 0
    try:
        for message in messages:
            await _complete_even_if_cancelled(_attempt(state, backend, message, lease_until))
            finished += 1
    except asyncio.CancelledError:
        await _complete_even_if_cancelled(_release(state, messages[finished + 1 :], lease_until))
        raise
    return len(messages)


async def run_dispatcher(state: AppState) -> None:
    """The dispatcher loop: a round, then a short pause unless the batch was full.

    A failing round (database unreachable, a bug) is logged and the loop goes on, pausing
    longer after each consecutive failure (up to a minute) so an outage does not flood the
    log; only cancellation ends it.
    """
    settings = state.settings
    backend = backend_for(settings)
    failures = 0
    while True:
        try:
            attempted = await dispatch_once(state, backend)
            failures = 0
        except Exception:
            logger.exception("outbox dispatch round failed", extra={"failures": failures + 1})
            attempted = 0
            failures += 1
        if attempted < settings.outbox_batch_size:
            pause = settings.dispatcher_interval * (1 << min(failures, 16))
            await asyncio.sleep(min(pause, max(FAILURE_PAUSE_MAX, settings.dispatcher_interval)))
