"""Recording audit events, in the transaction of the change they describe."""

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.models import AuditEvent
from app.core.clock import utcnow


class Actor:
    """Who acted: a user (id and login) or the system/operator (neither)."""

    def __init__(self, user_id: int | None = None, login: str | None = None) -> None:
        self.user_id = user_id
        self.login = login


SYSTEM = Actor(None, "system")


async def record_event(
    session: AsyncSession,
    action: str,
    *,
    customer_id: int | None,
    actor: Actor | None = None,
    target_type: str | None = None,
    target_id: int | str | None = None,
    client_ip: str | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Add one audit event (e.g. `user.created`) to the session; it commits with the change."""
    actor = actor or SYSTEM
    event = AuditEvent(
        at=utcnow(),
        customer_id=customer_id,
        actor_id=actor.user_id,
        actor_login=actor.login,
        action=action,
        target_type=target_type,
        target_id=None if target_id is None else str(target_id),
        client_ip=client_ip,
        details=details or {},
    )
    session.add(event)
    return event
