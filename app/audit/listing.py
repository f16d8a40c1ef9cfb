"""The audit log, a page at a time: newest first, with opaque cursors."""

from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.repository import list_events
from app.audit.schemas import AuditEventOut, AuditEventPage
from app.core.pagination import InvalidCursor, decode_cursor, encode_cursor


def _before_id(cursor: str, action: str | None) -> int:
    payload = decode_cursor(cursor)
    before = payload.get("i")
    if (
        payload.get("a") != action
        or not isinstance(before, int)
        or isinstance(before, bool)
        or not 0 < before < 2**31
    ):
        raise InvalidCursor("The cursor was made for another filter, or is not valid.")
    return before


async def list_page(
    session: AsyncSession, customer_id: int, *, action: str | None, limit: int, cursor: str | None
) -> AuditEventPage:
    """A page of the customer's events; follow `next_cursor` for older ones."""
    events = await list_events(
        session,
        customer_id,
        action=action,
        before_id=_before_id(cursor, action) if cursor else None,
        limit=limit + 1,
    )
    next_cursor = None
    if len(events) > limit:
        events = events[:limit]
        next_cursor = encode_cursor({"a": action, "i": events[-1].id})
    return AuditEventPage(
        items=[AuditEventOut.model_validate(event) for event in events], next_cursor=next_cursor
    )
