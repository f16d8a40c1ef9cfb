"""SMTP settings against real servers: authentication, and STARTTLS never silently skipped."""

from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest
from aiosmtpd.smtp import AuthResult, LoginPassword
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.state import AppState
from app.outbox.dispatcher import dispatch_once
from app.outbox.models import DeliveryState
from tests.factories import create_customer
from tests.outbox.helpers import invite, outbox_row
from tests.outbox.smtp_server import CapturingHandler, SmtpServer

SMTP_PASSWORD = "mail-Secret-4711"


def check_credentials(
    _server: Any, _session: Any, _envelope: Any, _mechanism: str, data: Any
) -> AuthResult:
    ok = (
        isinstance(data, LoginPassword)
        and data.login == b"portal"
        and data.password == SMTP_PASSWORD.encode()
    )
    return AuthResult(success=ok, handled=False)


@pytest.fixture
async def auth_smtp() -> AsyncIterator[SmtpServer]:
    server = SmtpServer(
        CapturingHandler(),
        authenticator=check_credentials,
        auth_required=True,
        auth_require_tls=False,  # loopback test server without a certificate
    )
    await server.start()
    yield server
    await server.stop()


def pointed_at(state: AppState, server: SmtpServer, **changes: object) -> AppState:
    settings = state.settings.model_copy(update={"smtp_port": server.port, **changes})
    return replace(state, settings=settings)


async def test_credentials_are_used(
    session: AsyncSession, state: AppState, auth_smtp: SmtpServer
) -> None:
    auth_state = pointed_at(state, auth_smtp, smtp_username="portal", smtp_password=SMTP_PASSWORD)
    customer = await create_customer(session)
    _user, invitation = await invite(session, auth_state, customer)
    assert await dispatch_once(auth_state) == 1
    assert (await outbox_row(session, invitation.outbox_message_id)).state == DeliveryState.SENT
    assert len(auth_smtp.handler.messages) == 1


async def test_wrong_password_keeps_the_mail_and_hides_the_password(
    session: AsyncSession, state: AppState, auth_smtp: SmtpServer
) -> None:
    wrong = "wrong-" + SMTP_PASSWORD
    auth_state = pointed_at(state, auth_smtp, smtp_username="portal", smtp_password=wrong)
    customer = await create_customer(session)
    _user, invitation = await invite(session, auth_state, customer)
    assert await dispatch_once(auth_state) == 1
    row = await outbox_row(session, invitation.outbox_message_id)
    # The operator's mistake, not the mail's: it stays queued for after the fix.
    assert row.state == DeliveryState.PENDING
    assert row.last_error is not None
    assert row.last_error.startswith("SMTP authentication failed")
    assert wrong not in row.last_error
    assert auth_smtp.handler.messages == []


async def test_starttls_required_but_not_offered_never_sends_in_clear(
    session: AsyncSession, state: AppState, smtp: SmtpServer
) -> None:
    tls_state = pointed_at(state, smtp, smtp_security="starttls")
    customer = await create_customer(session)
    _user, invitation = await invite(session, tls_state, customer)
    assert await dispatch_once(tls_state) == 1
    row = await outbox_row(session, invitation.outbox_message_id)
    assert row.state == DeliveryState.PENDING
    assert row.last_error is not None
    assert "STARTTLS" in row.last_error.upper()
    assert smtp.handler.data_attempts == 0
