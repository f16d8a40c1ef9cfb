"""The "planned until" sweep: accounts whose `expires_at` has passed become `expired`.

Login already refuses such accounts the moment `expires_at` passes (`may_log_in`); the sweep
makes the status say so, ends their sessions and records it in the audit log.
"""

import asyncio
import logging
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import SYSTEM, record_event
from app.core.clock import utcnow
from app.core.state import AppState
from app.users import repository
from app.users.status import StatusEvent, apply_event

logger = logging.getLogger("app.users.expiry")

SWEEP_INTERVAL_SECONDS = 60.0
BATCH_SIZE = 200


async def expire_due_accounts(
    session: AsyncSession, now: datetime | None = None, *, batch: int = BATCH_SIZE
) -> int:
    """Expire one batch of due accounts in the caller's transaction; how many were expired."""
    now = now or utcnow()
    users = await repository.claim_expired_users(session, now, batch)
    for user in users:
        transition = apply_event(user, StatusEvent.EXPIRE, now)
        user.end_sessions(now)
        await record_event(
            session,
            "user.expired",
            customer_id=user.customer_id,
            actor=SYSTEM,
            target_type="user",
            target_id=user.id,
            details={
                "from": transition.before,
                "to": transition.after,
                "expires_at": user.expires_at.isoformat() if user.expires_at else None,
            },
        )
    await session.flush()
    return len(users)


async def sweep_once(state: AppState) -> int:
    """Expire every due account, one committed batch at a time."""
    total = 0
    while True:
        async with state.database.sessionmaker.begin() as session:
            count = await expire_due_accounts(session)
        total += count
        if count < BATCH_SIZE:
            return total


async def run_expiry_sweep(state: AppState) -> None:
    """Background job: sweep every minute until cancelled; a failed round is logged, not fatal."""
    while True:
        try:
            expired = await sweep_once(state)
            if expired:
                logger.info("expired accounts", extra={"count": expired})
        except Exception:
            logger.exception("expiry sweep failed")
        await asyncio.sleep(SWEEP_INTERVAL_SECONDS)
