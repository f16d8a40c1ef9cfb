"""The dispatcher against a real SMTP server: delivery, outage, refusals, leases."""

import asyncio
import itertools
from datetime import timedelta
from email.utils import parsedate_to_datetime

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.clock import clock, utcnow
from app.core.state import AppState
from app.outbox import repository
from app.outbox.dispatcher import dispatch_once, retry_delay, safe_error
from app.outbox.models import DeliveryState
from app.outbox.service import enqueue_email
from app.users.models import Language
from tests.factories import create_customer
from tests.outbox.helpers import invite, outbox_row, parts
from tests.outbox.smtp_server import SmtpServer


async def test_invitation_sent_once_with_headers_text_and_html(
    session: AsyncSession, state: AppState, smtp: SmtpServer
) -> None:
    customer = await create_customer(session)
    german, german_invitation = await invite(session, state, customer, language=Language.DE)
    english, english_invitation = await invite(session, state, customer, language=Language.EN)
    assert (await outbox_row(session, german_invitation.outbox_message_id)).state == "pending"

    assert await dispatch_once(state) == 2
    assert await dispatch_once(state) == 0

    received = {str(message["To"]): message for message in smtp.handler.messages}
    assert sorted(received) == sorted([german.email, english.email])
    assert len(smtp.handler.messages) == 2
    for user, invitation, subject in (
        (german, german_invitation, "Ihr Zugang zum e:service Kundenportal"),
        (english, english_invitation, "Your access to the e:service customer portal"),
    ):
        mail = received[user.email]
        assert mail["Subject"] == subject
        assert mail["From"].addresses[0].display_name == "e:service"
        assert mail["From"].addresses[0].addr_spec == "noreply@eservice.example"
        assert mail.get_content_type() == "multipart/alternative"
        assert parsedate_to_datetime(str(mail["Date"])).tzinfo is not None
        row = await outbox_row(session, invitation.outbox_message_id)
        created = int(row.created_at.timestamp())
        assert mail["Message-ID"] == f"<outbox.{row.id}.{created}@eservice.example>"
        text, html = parts(mail)
        link = "https://portal.example.com/password-setup#token="
        for body in (text, html):
            assert user.login in body
            assert link in body
            assert "https://portal.example.com" in body
        assert row.state == DeliveryState.SENT
        assert row.sent_at is not None
        assert row.attempts == 1
        assert row.locked_until is None
    german_text, _ = parts(received[german.email])
    english_text, _ = parts(received[english.email])
    assert "Kennwort" in german_text
    assert "password" in english_text.lower()
    assert "Kennwort" not in english_text


async def test_outage_keeps_mail_queued_and_delivers_each_once_after(
    session: AsyncSession, state: AppState, smtp: SmtpServer
) -> None:
    k = 5
    await smtp.stop()
    customer = await create_customer(session)
    invitations = [(await invite(session, state, customer))[1] for _ in range(k)]

    assert await dispatch_once(state) == k
    before = utcnow()
    for invitation in invitations:
        row = await outbox_row(session, invitation.outbox_message_id)
        assert row.state == DeliveryState.PENDING
        assert row.attempts == 1
        assert row.last_error is not None
        assert "SMTP unreachable" in row.last_error
        assert row.locked_until is None
        # 30 s base, jitter takes at most a quarter off.
        wait = row.next_attempt_at - before
        assert timedelta(seconds=22) <= wait <= timedelta(seconds=30)
    assert await dispatch_once(state) == 0  # backing off: nothing due yet

    await smtp.start()
    assert await dispatch_once(state) == 0  # still backing off
    clock.advance(timedelta(seconds=31))
    assert await dispatch_once(state) == k
    clock.advance(timedelta(hours=2))
    assert await dispatch_once(state) == 0

    assert len(smtp.handler.messages) == k
    assert len(set(smtp.handler.message_ids())) == k
    for invitation in invitations:
        row = await outbox_row(session, invitation.outbox_message_id)
        assert row.state == DeliveryState.SENT
        assert row.attempts == 2
        assert row.last_error is None


@pytest.mark.parametrize("stage", ["data", "rcpt"])
async def test_550_fails_after_one_attempt(
    session: AsyncSession, state: AppState, smtp: SmtpServer, stage: str
) -> None:
    if stage == "data":
        smtp.handler.reply = "550 5.7.1 Message rejected"
    else:
        smtp.handler.rcpt_reply = "550 5.1.1 No such user"
    customer = await create_customer(session)
    _user, invitation = await invite(session, state, customer)

    assert await dispatch_once(state) == 1
    row = await outbox_row(session, invitation.outbox_message_id)
    assert row.state == DeliveryState.FAILED
    assert row.attempts == 1
    assert row.last_error is not None
    assert row.last_error.startswith("SMTP 550")
    for _ in range(3):
        clock.advance(timedelta(days=1))
        assert await dispatch_once(state) == 0
    assert smtp.handler.data_attempts == (1 if stage == "data" else 0)
    assert smtp.handler.messages == []


async def test_451_retries_with_growing_backoff_then_fails(
    session: AsyncSession, state: AppState, smtp: SmtpServer
) -> None:
    smtp.handler.reply = "451 4.3.0 Try again later"
    customer = await create_customer(session)
    _user, invitation = await invite(session, state, customer)
    max_attempts = state.settings.outbox_max_attempts

    delays: list[timedelta] = []
    for attempt in range(1, max_attempts):
        assert await dispatch_once(state) == 1
        row = await outbox_row(session, invitation.outbox_message_id)
        assert row.state == DeliveryState.PENDING
        assert row.attempts == attempt
        assert row.last_error is not None
        assert row.last_error.startswith("SMTP 451")
        delay = row.next_attempt_at - utcnow()
        delays.append(delay)
        assert await dispatch_once(state) == 0  # not before the backoff is over
        clock.advance(delay + timedelta(seconds=1))
    assert all(later > earlier for earlier, later in itertools.pairwise(delays))

    assert await dispatch_once(state) == 1
    row = await outbox_row(session, invitation.outbox_message_id)
    assert row.state == DeliveryState.FAILED
    assert row.attempts == max_attempts
    clock.advance(timedelta(days=2))
    assert await dispatch_once(state) == 0
    assert smtp.handler.data_attempts == max_attempts


async def test_stale_lease_of_a_crashed_dispatcher_is_reclaimed(
    session: AsyncSession, state: AppState, smtp: SmtpServer
) -> None:
    customer = await create_customer(session)
    _user, invitation = await invite(session, state, customer)
    # A dispatcher claims the message and dies before sending.
    now = utcnow()
    lease = now + state.settings.outbox_claim_lease
    async with state.database.sessionmaker.begin() as claim_session:
        claimed = await repository.claim_due_messages(
            claim_session, now=now, lease_until=lease, limit=10
        )
    assert [message.id for message in claimed] == [invitation.outbox_message_id]

    assert await dispatch_once(state) == 0  # the lease still holds
    clock.advance(state.settings.outbox_claim_lease - timedelta(seconds=1))
    assert await dispatch_once(state) == 0
    clock.advance(timedelta(seconds=2))
    assert await dispatch_once(state) == 1

    row = await outbox_row(session, invitation.outbox_message_id)
    assert row.state == DeliveryState.SENT
    assert row.attempts == 2
    assert len(smtp.handler.messages) == 1


async def test_late_outcome_of_a_lost_lease_is_not_recorded(
    session: AsyncSession, state: AppState
) -> None:
    customer = await create_customer(session)
    _user, invitation = await invite(session, state, customer)
    message_id = invitation.outbox_message_id
    assert message_id is not None
    now = utcnow()
    async with state.database.sessionmaker.begin() as claim_session:
        await repository.claim_due_messages(
            claim_session, now=now, lease_until=now + timedelta(minutes=5), limit=10
        )
    async with state.database.sessionmaker.begin() as late_session:
        recorded = await repository.mark_attempt_failed(
            late_session,
            message_id,
            lease_until=now + timedelta(minutes=4),  # not the lease the row carries
            error="late",
            retry_at=None,
        )
    assert recorded is False
    assert (await outbox_row(session, message_id)).state == DeliveryState.PENDING


async def test_template_looking_name_appears_literally(
    session: AsyncSession, state: AppState, smtp: SmtpServer
) -> None:
    customer = await create_customer(session)
    await invite(session, state, customer, first_name="{{7*7}}")
    assert await dispatch_once(state) == 1
    text, html = parts(smtp.handler.messages[0])
    assert "Guten Tag {{7*7}} Mustermann" in text
    assert "{{7*7}}" in html
    assert "Guten Tag 49" not in text


async def test_recipient_with_line_break_is_never_sent(
    session: AsyncSession, state: AppState, smtp: SmtpServer
) -> None:
    # Written past the API's validation, as a corrupted row would be.
    message = await enqueue_email(
        session,
        kind="password_changed",
        recipient="victim@example.com\r\nBcc: attacker@example.net",
        language="de",
        context={
            "brand_name": "e:service",
            "portal_url": "https://portal.example.com",
            "login": "x.y",
            "first_name": "A",
            "last_name": "B",
            "changed_at": "heute",
        },
    )
    assert await dispatch_once(state) == 1
    row = await outbox_row(session, message.id)
    assert row.state == DeliveryState.FAILED
    assert row.attempts == 1
    assert smtp.handler.data_attempts == 0


def test_retry_delay_grows_and_is_capped(state: AppState) -> None:
    settings = state.settings
    for attempts in range(1, 20):
        delay = retry_delay(settings, attempts)
        nominal = min(settings.outbox_retry_base * 2 ** (attempts - 1), settings.outbox_retry_max)
        assert nominal * 0.75 <= delay <= nominal
    assert retry_delay(settings, 100) <= settings.outbox_retry_max


def test_last_error_never_carries_the_smtp_password(state: AppState) -> None:
    settings = state.settings.model_copy(update={"smtp_password": "s3cret-Passw0rd"})
    text = safe_error(settings, RuntimeError("535 auth failed for s3cret-Passw0rd\r\nmore"))
    assert "s3cret-Passw0rd" not in text
    assert "\n" not in text
    assert safe_error(settings, RuntimeError("x" * 2000)) == "x" * 500


async def test_cancelled_round_finishes_the_mail_in_hand_and_gives_back_the_rest(
    session: AsyncSession, state: AppState, smtp: SmtpServer
) -> None:
    customer = await create_customer(session)
    invitations = [(await invite(session, state, customer))[1] for _ in range(3)]
    smtp.handler.delay = 0.3

    round_ = asyncio.create_task(dispatch_once(state))
    await asyncio.wait_for(smtp.handler.data_seen.wait(), timeout=10)
    round_.cancel()
    with pytest.raises(asyncio.CancelledError):
        await round_

    rows = [await outbox_row(session, i.outbox_message_id) for i in invitations]
    assert [row.state for row in rows] == [
        DeliveryState.SENT,
        DeliveryState.PENDING,
        DeliveryState.PENDING,
    ]
    assert [(row.attempts, row.locked_until) for row in rows[1:]] == [(0, None), (0, None)]
    assert len(smtp.handler.messages) == 1
    smtp.handler.delay = 0
    assert await dispatch_once(state) == 2  # due at once, no lease to wait for
    assert len(set(smtp.handler.message_ids())) == 3
