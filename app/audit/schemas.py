"""The audit log as the API shows it."""

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict


class AuditEventOut(BaseModel):
    """One recorded action: who (actor), what (action), to whom (target), when, from where."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    actor_id: int | None
    actor_login: str | None
    action: str
    target_type: str | None
    target_id: str | None
    client_ip: str | None
    details: dict[str, Any]


class AuditEventPage(BaseModel):
    """One page of the audit log, newest first; `next_cursor` is null on the last page."""

    items: list[AuditEventOut]
    next_cursor: str | None
