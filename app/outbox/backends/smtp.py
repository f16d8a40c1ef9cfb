"""The `smtp` backend: hands mail to an SMTP server with aiosmtplib (the only module that
imports it), and tells lasting refusals (5xx) from passing trouble (4xx, network)."""

from email.message import EmailMessage

import aiosmtplib

from app.core.config import Settings
from app.outbox.errors import PermanentDeliveryError, TransientDeliveryError


def _reply_error(code: int, text: str) -> TransientDeliveryError | PermanentDeliveryError:
    summary = f"SMTP {code} {' '.join(text.split())}"
    if 500 <= code < 600:
        return PermanentDeliveryError(summary)
    return TransientDeliveryError(summary)


class SmtpBackend:
    """Sends each mail over its own SMTP connection (none, STARTTLS or implicit TLS)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def send(self, email: EmailMessage) -> None:
        settings = self.settings
        try:
            await aiosmtplib.send(
                email,
                hostname=settings.smtp_host,
                port=settings.smtp_port,
                username=settings.smtp_username,
                password=settings.smtp_password,
                use_tls=settings.smtp_security == "tls",
                start_tls=settings.smtp_security == "starttls",
                timeout=settings.smtp_timeout,
            )
        except aiosmtplib.SMTPAuthenticationError as exc:
            # A wrong password is the operator's to fix; the mail itself is fine, so keep it.
            raise TransientDeliveryError(f"SMTP authentication failed ({exc.code})") from exc
        except aiosmtplib.SMTPRecipientsRefused as exc:
            refusal = exc.recipients[0] if exc.recipients else None
            if refusal is None:
                raise TransientDeliveryError("SMTP recipients refused") from exc
            raise _reply_error(refusal.code, refusal.message) from exc
        except aiosmtplib.SMTPResponseException as exc:
            raise _reply_error(exc.code, exc.message) from exc
        except aiosmtplib.SMTPNotSupported as exc:
            raise TransientDeliveryError(f"SMTP server does not support: {exc}") from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise TransientDeliveryError(f"SMTP unreachable: {type(exc).__name__}: {exc}") from exc
