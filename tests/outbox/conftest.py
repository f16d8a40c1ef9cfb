from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from app.core.config import Settings
from tests.outbox.smtp_server import CapturingHandler, SmtpServer


@pytest.fixture
async def smtp() -> AsyncIterator[SmtpServer]:
    server = SmtpServer(CapturingHandler())
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def settings(settings: Settings, smtp: SmtpServer) -> Settings:
    """Mail through the test's SMTP server; a few retries, 30 s apart at first."""
    return settings.model_copy(
        update={
            "mail_backend": "smtp",
            "smtp_host": "127.0.0.1",
            "smtp_port": smtp.port,
            "smtp_security": "none",
            "smtp_timeout": 5.0,
            "mail_from": "e:service <noreply@eservice.example>",
            "outbox_max_attempts": 4,
            "outbox_retry_base": timedelta(seconds=30),
            "outbox_retry_max": timedelta(hours=1),
            "outbox_batch_size": 10,
        }
    )
