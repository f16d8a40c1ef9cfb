"""The scheduled-invitation dispatcher: sends invitations whose planned time has come."""

import asyncio
import logging
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import record_event
from app.core.clock import utcnow
from app.core.state import AppState
from app.invitations.repository import claim_due_scheduled_users
from app.invitations.service import send_invitation
from app.users.status import StatusEvent, apply_event

logger = logging.getLogger("app.invitations")

BATCH_SIZE = 100


async def send_due_invitations(session: AsyncSession, state: AppState, now: datetime) -> int:
    """Invite every `scheduled` account whose time has come; how many were sent.

    The accounts are locked while this transaction runs, so with several processes each
    invitation goes out once. The caller commits.
    """
    sent = 0
    for user in await claim_due_scheduled_users(session, now, limit=BATCH_SIZE):
        transition = apply_event(user, StatusEvent.SEND_SCHEDULED_INVITATION, now)
        await record_event(
            session,
            "user.invitation_due",
            customer_id=user.customer_id,
            target_type="user",
            target_id=user.id,
            details={"from": transition.before, "to": transition.after},
        )
        await send_invitation(session, state.settings, user)
        sent += 1
    await session.flush()
    return sent


async def run_invitation_scheduler(state: AppState) -> None:
    """Background job: look for due invitations every `dispatcher_interval` seconds."""
    while True:
        try:
            while True:
                async with state.database.sessionmaker.begin() as session:
                    sent = await send_due_invitations(session, state, utcnow())
                if sent:
                    logger.info("scheduled invitations sent", extra={"count": sent})
                if sent < BATCH_SIZE:
                    break
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("scheduled invitations failed; retrying")
        await asyncio.sleep(state.settings.dispatcher_interval)
