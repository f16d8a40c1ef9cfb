"""Mail backends: where a built e-mail goes (`smtp`, `file`, `console`)."""

from email.message import EmailMessage
from typing import Protocol

from app.core.config import Settings


class MailBackend(Protocol):
    """Hands one e-mail over; raises Transient/PermanentDeliveryError on failure."""

    async def send(self, email: EmailMessage) -> None: ...


def backend_for(settings: Settings) -> MailBackend:
    """The backend ESERVICE_MAIL_BACKEND names."""
    if settings.mail_backend == "smtp":
        from app.outbox.backends.smtp import SmtpBackend

        return SmtpBackend(settings)
    if settings.mail_backend == "console":
        from app.outbox.backends.console import ConsoleBackend

        return ConsoleBackend()
    from app.outbox.backends.file import FileBackend

    return FileBackend(settings.mail_dir)
