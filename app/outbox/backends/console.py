"""The `console` backend: prints each mail to standard output, for development.

The printed mail is complete, link included: that is its purpose, and standard output is the
developer's terminal. The log line that goes with it names only the Message-ID, so log
collectors never receive a password link.
"""

import logging
import sys
from email.message import EmailMessage

logger = logging.getLogger("app.outbox")


class ConsoleBackend:
    """Writes each mail, as its text part, to standard output."""

    async def send(self, email: EmailMessage) -> None:
        text = email.get_body(preferencelist=("plain",))
        body = text.get_content().replace("\r\n", "\n") if isinstance(text, EmailMessage) else ""
        headers = "".join(
            f"{name}: {email[name]}\n" for name in ("From", "To", "Subject", "Message-ID")
        )
        sys.stdout.write(f"{'=' * 72}\n{headers}\n{body}{'=' * 72}\n")
        sys.stdout.flush()
        logger.info("mail printed to console", extra={"message_id": str(email["Message-ID"])})
