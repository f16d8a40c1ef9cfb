"""Scheduled invitations: sent when due, not before, each once."""

import asyncio
import contextlib
from datetime import timedelta

from sqlalchemy import select

from app.audit.models import AuditEvent
from app.core.clock import clock, utcnow
from app.invitations.jobs import run_invitation_scheduler, send_due_invitations
from app.invitations.models import Invitation
from app.main import background_jobs
from app.users.status import UserStatus
from tests.factories import create_customer, create_user
from tests.invitations.outbox_helpers import queued_mails, token_in


async def _scheduled(session, state, customer, at, **kwargs):
    user = await create_user(
        session, state, customer, status=UserStatus.SCHEDULED, password=None, **kwargs
    )
    session.add(Invitation(user_id=user.id, scheduled_for=at, sent_count=0))
    await session.flush()
    return user


async def test_sent_when_due_and_not_before(client, session, state):
    customer = await create_customer(session)
    at = utcnow() + timedelta(hours=2)
    user = await _scheduled(session, state, customer, at)
    later = await _scheduled(session, state, customer, at + timedelta(days=1))

    assert await send_due_invitations(session, state, utcnow()) == 0
    assert await send_due_invitations(session, state, at - timedelta(seconds=1)) == 0
    assert user.status == UserStatus.SCHEDULED
    assert await queued_mails(session, user.id) == []

    clock.advance(timedelta(hours=2))
    assert await send_due_invitations(session, state, at) == 1
    assert user.status == UserStatus.INVITED
    assert later.status == UserStatus.SCHEDULED
    invitation = await session.get(Invitation, user.id)
    assert invitation is not None
    assert invitation.scheduled_for is None
    assert invitation.sent_count == 1
    [due] = (
        await session.execute(
            select(AuditEvent).where(
                AuditEvent.action == "user.invitation_due", AuditEvent.target_id == str(user.id)
            )
        )
    ).scalars()
    assert due.details == {"from": "scheduled", "to": "invited"}
    assert due.actor_id is None
    [mail] = await queued_mails(session, user.id, "invitation")
    inspect = await client.post("/api/v1/password-tokens/inspect", json={"token": token_in(mail)})
    assert inspect.status_code == 200
    # A second run finds nothing more to send.
    assert await send_due_invitations(session, state, at + timedelta(minutes=1)) == 0
    assert len(await queued_mails(session, user.id)) == 1


async def test_account_past_its_end_is_not_invited(session, state):
    customer = await create_customer(session)
    at = utcnow() - timedelta(minutes=1)
    user = await _scheduled(session, state, customer, at, expires_at=at)
    assert await send_due_invitations(session, state, utcnow()) == 0
    assert user.status == UserStatus.SCHEDULED


async def test_job_is_registered():
    assert run_invitation_scheduler in background_jobs()


async def test_scheduler_loop_sends_due_invitations(session, state):
    """The background job itself, run briefly on the test database."""
    customer = await create_customer(session)
    user = await _scheduled(session, state, customer, utcnow() - timedelta(seconds=1))
    task = asyncio.create_task(run_invitation_scheduler(state))
    # The test shares its connection with the job: do not query until the job is stopped.
    await asyncio.sleep(0.5)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    sent_count = (
        await session.execute(select(Invitation.sent_count).where(Invitation.user_id == user.id))
    ).scalar_one()
    assert sent_count == 1
