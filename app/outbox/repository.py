"""Queries of the outbox: adding and withdrawing messages, claiming due ones, recording delivery."""

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.outbox.models import DeliveryState, OutboxMessage


async def add_message(session: AsyncSession, message: OutboxMessage) -> OutboxMessage:
    session.add(message)
    await session.flush()
    return message


async def delete_unclaimed_messages(
    session: AsyncSession, user_id: int, kinds: tuple[str, ...], *, now: datetime
) -> int:
    """Delete the user's pending messages of `kinds` whose lease is free at `now`; how many."""
    result = await session.execute(
        delete(OutboxMessage)
        .where(
            OutboxMessage.user_id == user_id,
            OutboxMessage.kind.in_(kinds),
            OutboxMessage.state == DeliveryState.PENDING,
            or_(OutboxMessage.locked_until.is_(None), OutboxMessage.locked_until < now),
        )
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def claim_due_messages(
    session: AsyncSession, *, now: datetime, lease_until: datetime, limit: int
) -> Sequence[OutboxMessage]:
    """Reserve up to `limit` due messages until `lease_until` and count the attempt.

    PostgreSQL: `FOR UPDATE SKIP LOCKED`, so concurrent dispatchers take disjoint rows and
    never wait for each other. SQLite has no row locks (SQLAlchemy omits the clause there):
    the transaction starts with BEGIN IMMEDIATE, so one claimer at a time holds the database.
    A message whose lease ran out (its dispatcher died mid-send) is due again.
    """
    rows = (
        (
            await session.execute(
                select(OutboxMessage)
                .where(
                    OutboxMessage.state == DeliveryState.PENDING,
                    OutboxMessage.next_attempt_at <= now,
                    or_(OutboxMessage.locked_until.is_(None), OutboxMessage.locked_until < now),
                )
                .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        )
        .scalars()
        .all()
    )
    for row in rows:
        row.locked_until = lease_until
        # Counted at claim time, so a message that crashes its dispatcher still runs out.
        row.attempts += 1
    await session.flush()
    return rows


async def mark_sent(session: AsyncSession, message_id: int, *, now: datetime) -> bool:
    """Record a delivery. Not fenced by the lease: once handed over, it is sent."""
    result = await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message_id, OutboxMessage.state == DeliveryState.PENDING)
        .values(state=DeliveryState.SENT, sent_at=now, locked_until=None, last_error=None)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0))


async def mark_attempt_failed(
    session: AsyncSession,
    message_id: int,
    *,
    lease_until: datetime,
    error: str,
    retry_at: datetime | None,
) -> bool:
    """Record a failed attempt: due again at `retry_at`, or `failed` for good when None.

    Fenced by the lease: if it ran out and another dispatcher took the message over, that
    dispatcher's outcome counts, not this one's.
    """
    values: dict[str, object] = {"locked_until": None, "last_error": error[:500]}
    if retry_at is None:
        values["state"] = DeliveryState.FAILED
    else:
        values["next_attempt_at"] = retry_at
    result = await session.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.id == message_id,
            OutboxMessage.state == DeliveryState.PENDING,
            OutboxMessage.locked_until == lease_until,
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0))


async def get_message(session: AsyncSession, message_id: int) -> OutboxMessage | None:
    """One outbox row, freshly read (the delivery state shown in a user's invitation block)."""
    return await session.get(OutboxMessage, message_id, populate_existing=True)


async def release_claims(
    session: AsyncSession, message_ids: list[int], lease_until: datetime
) -> None:
    """Give back claimed messages that were not attempted (shutdown), uncounted and due now."""
    if not message_ids:
        return
    await session.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.id.in_(message_ids),
            OutboxMessage.state == DeliveryState.PENDING,
            OutboxMessage.locked_until == lease_until,
        )
        .values(locked_until=None, attempts=OutboxMessage.attempts - 1)
        .execution_options(synchronize_session=False)
    )
