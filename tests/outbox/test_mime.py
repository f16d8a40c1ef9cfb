"""The MIME builder: exactly the expected headers, stable Message-ID, no header injection."""

import email
import email.policy
from datetime import UTC, datetime

import pytest

from app.outbox.errors import PermanentDeliveryError
from app.outbox.mime import build_email, message_id
from app.outbox.models import OutboxMessage
from app.outbox.service import render_email

MAIL_FROM = "e:service <noreply@eservice.example>"
HEADERS = {
    "from",
    "to",
    "subject",
    "date",
    "message-id",
    "auto-submitted",
    "mime-version",
    "content-type",
}


def row(**changes: object) -> OutboxMessage:
    values: dict[str, object] = {
        "id": 42,
        "kind": "invitation",
        "recipient": "erika@example.com",
        "subject": "Ihr Zugang",
        "body_text": "Hallo Ärika\n",
        "body_html": "<p>Hallo Ärika</p>",
        "created_at": datetime(2026, 11, 25, 10, 0, tzinfo=UTC),
    }
    values.update(changes)
    return OutboxMessage(**values)


def reparse(message: OutboxMessage) -> email.message.EmailMessage:
    parsed = email.message_from_bytes(
        build_email(message, MAIL_FROM).as_bytes(), policy=email.policy.default
    )
    assert isinstance(parsed, email.message.EmailMessage)
    return parsed


def test_exactly_the_expected_headers() -> None:
    parsed = reparse(row())
    assert {key.lower() for key in parsed} == HEADERS
    assert parsed["Message-ID"] == "<outbox.42.1795600800@eservice.example>"
    assert parsed["To"] == "erika@example.com"
    assert parsed.get_content_type() == "multipart/alternative"
    text = parsed.get_body(preferencelist=("plain",))
    assert isinstance(text, email.message.EmailMessage)
    assert text.get_content().splitlines() == ["Hallo Ärika"]


def test_text_only_when_there_is_no_html() -> None:
    parsed = reparse(row(body_html=None))
    assert parsed.get_content_type() == "text/plain"


def test_message_id_is_stable_per_row_and_distinct_between_rows() -> None:
    assert message_id(row(), MAIL_FROM) == message_id(row(), MAIL_FROM)
    assert message_id(row(), MAIL_FROM) != message_id(row(id=43), MAIL_FROM)


@pytest.mark.parametrize(
    "changes",
    [
        {"recipient": "erika@example.com\r\nBcc: attacker@example.net"},
        {"recipient": "erika@example.com\nBcc: attacker@example.net"},
        {"recipient": "not an address"},
        {"subject": "Hallo\r\nBcc: attacker@example.net"},
        {"subject": "Hallo\nX-Injected: 1"},
    ],
)
def test_line_breaks_in_header_values_are_refused(changes: dict[str, object]) -> None:
    with pytest.raises(PermanentDeliveryError):
        build_email(row(**changes), MAIL_FROM)


def test_line_breaks_in_the_body_stay_in_the_body() -> None:
    parsed = reparse(row(body_text="Name: A\r\nBcc: attacker@example.net\r\n", body_html=None))
    assert {key.lower() for key in parsed} == HEADERS | {"content-transfer-encoding"}
    assert "Bcc" not in parsed
    assert "Bcc: attacker@example.net" in parsed.get_content()


def test_rendered_subject_never_spans_lines() -> None:
    context = {
        "brand_name": "Evil\r\nBcc: attacker@example.net",
        "portal_url": "https://portal.example.com",
        "login": "x.y",
        "first_name": "A",
        "last_name": "B",
        "link": "https://portal.example.com/password-setup#token=t",
        "expires_at": "morgen",
        "locked": False,
    }
    subject, text, html = render_email("invitation", "de", context)
    assert "\r" not in subject
    assert "\n" not in subject
    parsed = reparse(row(subject=subject, body_text=text, body_html=html))
    assert {key.lower() for key in parsed} == HEADERS


def test_template_looking_values_are_not_evaluated() -> None:
    context = {
        "brand_name": "e:service",
        "portal_url": "https://portal.example.com",
        "login": "x.y",
        "first_name": "{{7*7}}",
        "last_name": "<b>{% raw %}</b>",
        "link": "https://portal.example.com/password-setup#token=t",
        "expires_at": "morgen",
        "locked": False,
    }
    _subject, text, html = render_email("invitation", "en", context)
    assert "{{7*7}}" in text
    assert "{{7*7}}" in html
    assert "<b>{% raw %}</b>" in text
    assert "&lt;b&gt;{% raw %}&lt;/b&gt;" in html
