"""The file and console backends, through the dispatcher."""

import email
import email.policy
import logging
import stat
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.state import AppState
from app.outbox.dispatcher import dispatch_once
from app.outbox.models import DeliveryState
from tests.factories import create_customer
from tests.outbox.helpers import invite, outbox_row, parts


def with_backend(state: AppState, backend: str, **changes: object) -> AppState:
    settings = state.settings.model_copy(update={"mail_backend": backend, **changes})
    return replace(state, settings=settings)


async def test_file_backend_writes_a_parseable_eml(
    session: AsyncSession, state: AppState, tmp_path: Path
) -> None:
    mail_dir = tmp_path / "var" / "mail"
    file_state = with_backend(state, "file", mail_dir=mail_dir)
    customer = await create_customer(session)
    user, invitation = await invite(session, file_state, customer)

    assert await dispatch_once(file_state) == 1

    files = list(mail_dir.iterdir())
    assert len(files) == 1  # no temporary file left behind
    eml = files[0]
    row = await outbox_row(session, invitation.outbox_message_id)
    assert eml.name == f"outbox.{row.id}.{int(row.created_at.timestamp())}@eservice.example.eml"
    assert stat.S_IMODE(eml.stat().st_mode) == 0o600  # it holds a live password link
    parsed = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
    assert isinstance(parsed, email.message.EmailMessage)
    assert parsed["To"] == user.email
    text, html = parts(parsed)
    assert user.login in text
    assert "#token=" in html
    assert row.state == DeliveryState.SENT


async def test_file_backend_unwritable_directory_is_retried(
    session: AsyncSession, state: AppState, tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("x")
    file_state = with_backend(state, "file", mail_dir=blocker)
    customer = await create_customer(session)
    _user, invitation = await invite(session, file_state, customer)

    assert await dispatch_once(file_state) == 1
    row = await outbox_row(session, invitation.outbox_message_id)
    assert row.state == DeliveryState.PENDING
    assert row.last_error is not None
    assert row.last_error.startswith("cannot write mail file")


async def test_console_backend_prints_the_mail_but_logs_no_link(
    session: AsyncSession,
    state: AppState,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    console_state = with_backend(state, "console")
    customer = await create_customer(session)
    user, invitation = await invite(session, console_state, customer)

    with caplog.at_level(logging.DEBUG):
        assert await dispatch_once(console_state) == 1

    printed = capsys.readouterr().out
    assert user.login in printed
    assert "#token=" in printed
    assert caplog.records
    for record in caplog.records:
        line = record.getMessage() + repr(record.__dict__)
        assert "token=" not in line
        assert user.email not in line
    row = await outbox_row(session, invitation.outbox_message_id)
    assert row.state == DeliveryState.SENT
