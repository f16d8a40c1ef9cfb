"""Building the e-mail of an outbox row: multipart/alternative text + HTML, fixed headers.

The builder sets exactly From, To, Subject, Date, Message-ID and Auto-Submitted. A header
value carrying CR or LF is refused, so no stored value can add a header of its own (names
with control characters are refused at the API already; this is the second fence).
"""

from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime

from app.outbox.errors import PermanentDeliveryError
from app.outbox.models import OutboxMessage


def _header_value(name: str, value: str) -> str:
    if any(char in value for char in "\r\n\x00"):
        raise PermanentDeliveryError(f"{name} contains a line break")
    return value


def _recipient(value: str) -> Address:
    _header_value("recipient", value)
    try:
        return Address(addr_spec=value)
    except (ValueError, IndexError) as exc:
        raise PermanentDeliveryError("recipient is not an e-mail address") from exc


def _split_address(mail_from: str) -> tuple[str, str]:
    """`Name <addr>` or `addr` → (name, addr); the name is taken verbatim, colons included."""
    value = mail_from.strip()
    if value.endswith(">") and "<" in value:
        name, _, address = value[:-1].rpartition("<")
        return name.strip().strip('"').strip(), address.strip()
    return "", value


def _sender(mail_from: str) -> Address:
    # Parsed and re-quoted: a bare display name such as `e:service` would otherwise be read
    # as an RFC 5322 group ("e:" ... ";") by every receiving mail client.
    _header_value("sender", mail_from)
    name, address = _split_address(mail_from)
    try:
        return Address(display_name=name, addr_spec=address)
    except (ValueError, IndexError) as exc:
        raise PermanentDeliveryError("ESERVICE_MAIL_FROM is not an e-mail address") from exc


def sender_domain(mail_from: str) -> str:
    """The domain of the sender address, for Message-IDs (`localhost` if it has none)."""
    return _split_address(mail_from)[1].rpartition("@")[2] or "localhost"


def message_id(message: OutboxMessage, mail_from: str) -> str:
    """The Message-ID of an outbox row: the same on every attempt, so a re-sent copy (after a
    crash between hand-over and bookkeeping) is recognisable as a duplicate."""
    created = int(message.created_at.timestamp())
    return f"<outbox.{message.id}.{created}@{sender_domain(mail_from)}>"


def build_email(message: OutboxMessage, mail_from: str) -> EmailMessage:
    """The MIME message for an outbox row; `PermanentDeliveryError` if it cannot be built."""
    email = EmailMessage(policy=SMTP)
    email["From"] = _sender(mail_from)
    email["To"] = _recipient(message.recipient)
    email["Subject"] = _header_value("subject", message.subject)
    email["Date"] = format_datetime(message.created_at)
    email["Message-ID"] = message_id(message, mail_from)
    # RFC 3834: machine-generated, so auto-responders stay quiet.
    email["Auto-Submitted"] = "auto-generated"
    email.set_content(message.body_text, subtype="plain", charset="utf-8")
    if message.body_html:
        email.add_alternative(message.body_html, subtype="html", charset="utf-8")
    return email
