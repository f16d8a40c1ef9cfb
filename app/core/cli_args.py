"""Checks of command-line arguments: bad input becomes a one-line CommandError."""

import re
from collections.abc import Callable

from app.core.commands import CommandError


def checked_text(name: str, value: str, *, max_length: int, pattern: str | None = None) -> str:
    """`value` if it is printable, 1..max_length characters and matches `pattern`."""
    if not value.strip() or len(value) > max_length or not value.isprintable():
        raise CommandError(f"{name} must be 1 to {max_length} printable characters")
    if pattern is not None and not re.fullmatch(pattern, value):
        raise CommandError(f"{name} {value!r} is not valid (allowed: {pattern})")
    return value


def checked_with(name: str, value: str, check: Callable[[str], str]) -> str:
    """`check(value)`, with its ValueError turned into a one-line CommandError."""
    try:
        return check(value)
    except ValueError as exc:
        raise CommandError(f"{name} {exc}") from exc
