"""Queries of the audit log."""

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.models import AuditEvent


async def list_events(
    session: AsyncSession,
    customer_id: int,
    *,
    action: str | None,
    before_id: int | None,
    limit: int,
) -> Sequence[AuditEvent]:
    """The customer's events, newest first (by id, which grows with time), before `before_id`."""
    query = select(AuditEvent).where(AuditEvent.customer_id == customer_id)
    if action is not None:
        query = query.where(AuditEvent.action == action)
    if before_id is not None:
        query = query.where(AuditEvent.id < before_id)
    result = await session.execute(query.order_by(AuditEvent.id.desc()).limit(limit))
    return result.scalars().all()
