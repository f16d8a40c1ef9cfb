"""The `file` backend: one `.eml` file per mail under MAIL_DIR, for development.

A newcomer opens the newest file in var/mail/ with any mail client (or a text editor) and
follows the link. Files are written to a temporary name and renamed, so a reader never sees
half a mail; they are readable by the owner only, since they carry live password links.
"""

import asyncio
import os
import tempfile
from email.message import EmailMessage
from pathlib import Path

from app.outbox.errors import TransientDeliveryError


def eml_name(email: EmailMessage) -> str:
    """`<Message-ID without brackets>.eml`: stable per outbox row, so a re-send overwrites."""
    return str(email["Message-ID"]).strip("<>").replace("/", "_") + ".eml"


def _write_atomically(directory: Path, name: str, data: bytes) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=directory, prefix=".", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        target = directory / name
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target


class FileBackend:
    """Writes each mail as an `.eml` file into a directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    async def send(self, email: EmailMessage) -> None:
        try:
            await asyncio.to_thread(
                _write_atomically, self.directory, eml_name(email), email.as_bytes()
            )
        except OSError as exc:
            raise TransientDeliveryError(f"cannot write mail file: {exc.strerror}") from exc
