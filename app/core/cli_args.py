"""Helpers of operator commands: argument checks and a unit of work, failing in one line."""

import re
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.commands import CommandError, run_with_database
from app.core.config import Settings
from app.core.db import Database
from app.core.errors import AppError

T = TypeVar("T")


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


def run_in_transaction(work: Callable[[AsyncSession, Settings], Awaitable[T]]) -> T:
    """Run `work` in one committed transaction; its AppError becomes a one-line CommandError."""

    async def unit_of_work(database: Database, settings: Settings) -> T:
        async with database.sessionmaker.begin() as session:
            return await work(session, settings)

    try:
        return run_with_database(unit_of_work)
    except AppError as exc:
        raise CommandError(exc.detail or exc.title) from exc
