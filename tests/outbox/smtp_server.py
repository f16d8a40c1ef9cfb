"""A real SMTP server for tests: aiosmtpd in the test's own event loop, on a free port."""

import asyncio
import email
import email.policy
import warnings
from email.message import EmailMessage
from typing import Any

from aiosmtpd.smtp import SMTP


class CapturingHandler:
    """Accepts every mail and keeps it; `reply` turns it into a refusing server (550, 451)."""

    def __init__(self, reply: str = "250 OK", rcpt_reply: str | None = None) -> None:
        self.reply = reply
        self.rcpt_reply = rcpt_reply
        self.messages: list[EmailMessage] = []
        self.data_attempts = 0
        self.delay = 0.0
        self.data_seen = asyncio.Event()

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.data_attempts += 1
        self.data_seen.set()
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.reply.startswith("250"):
            parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
            assert isinstance(parsed, EmailMessage)
            self.messages.append(parsed)
        return self.reply

    def message_ids(self) -> list[str]:
        return [str(message["Message-ID"]) for message in self.messages]


class SmtpServer:
    """Start, stop and restart (on the same port) an aiosmtpd server."""

    def __init__(self, handler: CapturingHandler, **smtp_options: Any) -> None:
        self.handler = handler
        self.smtp_options = smtp_options
        self.port = 0
        self._server: asyncio.Server | None = None

    def _protocol(self) -> SMTP:
        with warnings.catch_warnings():
            # aiosmtpd warns about AUTH without TLS; the test server listens on loopback only.
            warnings.filterwarnings("ignore", "Requiring AUTH while not requiring TLS")
            return SMTP(self.handler, hostname="smtp.test", **self.smtp_options)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self._protocol,
            host="127.0.0.1",
            port=self.port,
            reuse_address=True,
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
