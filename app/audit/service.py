"""Recording audit events, in the transaction of the change they describe."""

from typing import Any, Required, TypedDict, Unpack, cast

from sqlalchemy import Insert, Select, Table, bindparam, insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.models import AuditEvent
from app.core.clock import utcnow
from app.core.db import direct_in
from app.core.direct import Prepared


class Actor:
    """Who acted: a user (id and login) or the system/operator (neither)."""

    def __init__(self, user_id: int | None = None, login: str | None = None) -> None:
        self.user_id = user_id
        self.login = login


SYSTEM = Actor(None, "system")

# One INSERT of the row, rather than an entity in the session: events are written often (every
# login and hand-off) and never read back by the request that writes them.
EVENTS = cast(Table, AuditEvent.__table__)
# The columns an event is written with, in this order (`events_from`).
EVENT_COLUMNS = (
    "at",
    "customer_id",
    "actor_id",
    "actor_login",
    "action",
    "target_type",
    "target_id",
    "client_ip",
    "details",
)
# Run with the values of `event_row`, in an ORM session's transaction (`record_event`) or a
# transaction of direct statements (`DbUnit`), or by a group commit (the PBX hand-off).
INSERT_EVENT = Prepared(insert(EVENTS).values({name: bindparam(name) for name in EVENT_COLUMNS}))


def events_from(source: Select[Any]) -> Insert:
    """An INSERT of the events that `source` selects, column by column as EVENT_COLUMNS, for
    one statement that writes a change and its event together (see app/auth/repository.py)."""
    return insert(EVENTS).from_select(list(EVENT_COLUMNS), source)


class EventFields(TypedDict, total=False):
    """What an audit event says beside its action; only the customer must be given."""

    customer_id: Required[int | None]
    actor: Actor | None
    target_type: str | None
    target_id: int | str | None
    client_ip: str | None
    details: dict[str, Any] | None


def event_row(action: str, **fields: Unpack[EventFields]) -> dict[str, Any]:
    """The values of one audit event (e.g. `user.created`), as of now."""
    actor = fields.get("actor") or SYSTEM
    target_id = fields.get("target_id")
    return {
        "at": utcnow(),
        "customer_id": fields["customer_id"],
        "actor_id": actor.user_id,
        "actor_login": actor.login,
        "action": action,
        "target_type": fields.get("target_type"),
        "target_id": None if target_id is None else str(target_id),
        "client_ip": fields.get("client_ip"),
        "details": fields.get("details") or {},
    }


async def record_event(session: AsyncSession, action: str, **fields: Unpack[EventFields]) -> None:
    """Write one audit event (e.g. `user.created`) in the session's transaction.

    It commits or rolls back with the change it describes. The row is written at once, so a
    row it refers to (its customer) must have been flushed already.
    """
    row = event_row(action, **fields)
    # In the session's transaction, as a direct statement: an INSERT needs nothing of the
    # ORM's execution, and events are written on every login.
    await (await direct_in(session)).run(INSERT_EVENT, row)
