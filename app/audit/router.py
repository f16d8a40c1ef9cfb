"""The audit log of a customer, for its portal admins."""

from typing import Annotated

from fastapi import APIRouter, Query, Response

from app.audit.listing import list_page
from app.audit.schemas import AuditEventPage
from app.core.auth import AuditReader
from app.core.db import DbSession
from app.core.errors import problem_responses

router = APIRouter(prefix="/audit-events", tags=["audit"])

ACTION_PATTERN = r"^[a-z][a-z_]*(\.[a-z_]+)*$"


@router.get("", responses=problem_responses(400, 401, 403, 422))
async def list_audit_events(
    session: DbSession,
    principal: AuditReader,
    response: Response,
    action: Annotated[
        str | None,
        Query(max_length=64, pattern=ACTION_PATTERN, description="e.g. `user.created`"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> AuditEventPage:
    """The customer's audit events, newest first (follow `next_cursor` for older ones)."""
    response.headers["Cache-Control"] = "no-store"
    return await list_page(
        session, principal.customer_id, action=action, limit=limit, cursor=cursor
    )
