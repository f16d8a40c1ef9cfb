"""Self-service reset requests: the same 202 for everyone, mail only where it belongs."""

from datetime import timedelta

import pytest
from sqlalchemy import select

from app.audit.models import AuditEvent
from app.core.clock import clock
from app.invitations.service import send_invitation
from app.outbox.models import OutboxMessage
from app.users.status import UserStatus
from tests.factories import create_customer, create_user
from tests.invitations.outbox_helpers import mark_all_sent, queued_mails, token_in

NEW_PASSWORD = "Kaffee mit Hafermilch um neun"


async def _reset(client, login):
    # Every request of the test client comes from the same client address.
    response = await client.post("/api/v1/password-reset", json={"login": login})
    assert response.status_code == 202, response.text
    return response.json()


async def _mail_count(session):
    return len((await session.execute(select(OutboxMessage.id))).scalars().all())


@pytest.mark.parametrize("status", [UserStatus.ACTIVE, UserStatus.LOCKED])
async def test_active_and_locked_accounts_get_a_reset_link(client, session, state, status):
    user = await create_user(
        session, state, await create_customer(session), login="Admin.Telefonanlage1", status=status
    )
    await _reset(client, "admin.TELEFONANLAGE1")
    [mail] = await queued_mails(session, user.id, "password_reset")
    assert mail.recipient == user.email
    assert "Admin.Telefonanlage1" in mail.body_text
    assert mail.body_text.count("https://portal.example.com/password-setup#token=") == 1
    if status == UserStatus.LOCKED:
        assert "entsperren" in mail.body_text
    token = token_in(mail)
    inspect = await client.post("/api/v1/password-tokens/inspect", json={"token": token})
    assert inspect.json()["purpose"] == "reset"
    setup = await client.post(
        "/api/v1/password-setup",
        json={"token": token, "password": NEW_PASSWORD, "password_confirmation": NEW_PASSWORD},
    )
    assert setup.status_code == 200
    await session.refresh(user)
    assert user.status == UserStatus.ACTIVE
    actions = (
        await session.execute(select(AuditEvent.action).where(AuditEvent.target_id == str(user.id)))
    ).scalars()
    assert {"password.reset_requested", "password.set"} <= set(actions)


async def test_invited_account_with_expired_link_gets_a_new_invitation(client, session, state):
    user = await create_user(
        session, state, await create_customer(session), status=UserStatus.INVITED, password=None
    )
    await send_invitation(session, state.settings, user)
    old = token_in((await queued_mails(session, user.id, "invitation"))[0])
    clock.advance(state.settings.invitation_ttl + timedelta(minutes=5))
    assert (
        await client.post("/api/v1/password-tokens/inspect", json={"token": old})
    ).status_code == 410

    await _reset(client, user.login)
    # The unsent mail with the dead link is withdrawn; the new link goes out alone.
    mails = await queued_mails(session, user.id)
    assert [m.kind for m in mails] == ["invitation"]
    new = token_in(mails[-1])
    assert new != old
    inspect = await client.post("/api/v1/password-tokens/inspect", json={"token": new})
    assert inspect.status_code == 200
    assert inspect.json()["purpose"] == "invitation"
    await session.refresh(user)
    assert user.status == UserStatus.INVITED


async def test_same_answer_and_no_mail_for_unknown_or_ineligible(client, session, state):
    customer = await create_customer(session)
    known = await create_user(session, state, customer)
    answer = await _reset(client, known.login)
    before = await _mail_count(session)
    disabled = await create_user(session, state, customer, status=UserStatus.DISABLED)
    expired = await create_user(session, state, customer, status=UserStatus.EXPIRED)
    scheduled = await create_user(
        session, state, customer, status=UserStatus.SCHEDULED, password=None
    )
    past_end = await create_user(
        session, state, customer, expires_at=clock.now() - timedelta(minutes=1)
    )
    for login in [
        "nobody.here",
        "x" * 254,
        disabled.login,
        expired.login,
        scheduled.login,
        past_end.login,
    ]:
        assert await _reset(client, login) == answer
    assert await _mail_count(session) == before


async def test_rate_limit_per_login_keeps_the_answer_and_sends_nothing_more(client, session, state):
    user = await create_user(session, state, await create_customer(session))
    limit = state.settings.password_reset_per_login_per_hour
    answers = []
    for _ in range(limit + 3):
        answers.append(await _reset(client, user.login))
        await mark_all_sent(session)
    assert len({str(a) for a in answers}) == 1
    assert len(await queued_mails(session, user.id)) == limit
    clock.advance(timedelta(hours=1, seconds=1))
    await _reset(client, user.login)
    assert len(await queued_mails(session, user.id)) == limit + 1


async def test_rate_limit_per_client_ip(client, session, state):
    customer = await create_customer(session)
    limit = state.settings.password_reset_per_ip_per_hour
    for i in range(limit):
        await _reset(client, f"unknown.{i}")
    user = await create_user(session, state, customer)
    await _reset(client, user.login)
    assert await queued_mails(session, user.id) == []


async def test_bad_bodies(client):
    for body in [{}, {"login": ""}, {"login": "a\r\nBcc: x@example.com"}, {"login": "a", "x": 1}]:
        response = await client.post("/api/v1/password-reset", json=body)
        assert response.status_code == 422, body
        assert response.json()["code"] == "validation_error"
