"""Opaque keyset cursors: where the next page starts, as a URL-safe string.

A cursor is base64url JSON, not a secret: it only ever moves within what the caller may see
anyway (every list query is bound to the caller's customer). Anything that does not decode
to what the list expects answers 400 `invalid_cursor`, never 500.
"""

import base64
import binascii
import json
from typing import Any

from app.core.errors import AppError

MAX_CURSOR_LENGTH = 512


class InvalidCursor(AppError):
    status, code, title = 400, "invalid_cursor", "The pagination cursor is not valid"


def encode_cursor(payload: dict[str, Any]) -> str:
    raw = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> dict[str, Any]:
    """The cursor's payload (a JSON object), or InvalidCursor."""
    if len(cursor) > MAX_CURSOR_LENGTH:
        raise InvalidCursor("The cursor is too long.")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        payload = json.loads(raw)
    except (binascii.Error, ValueError) as exc:
        raise InvalidCursor("The cursor cannot be decoded; start again without it.") from exc
    if not isinstance(payload, dict):
        raise InvalidCursor("The cursor cannot be decoded; start again without it.")
    return payload
