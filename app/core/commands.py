"""What every `eservice` command shares: settings, a database, one-line errors."""

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from app.core.config import Settings, get_settings
from app.core.db import Database, create_engine

T = TypeVar("T")


class CommandError(Exception):
    """Bad input to a command: printed as one line, exit status 1."""


def run_with_database(work: Callable[[Database, Settings], Awaitable[T]]) -> T:
    """Run `work` in a fresh event loop with the configured database, then close it."""
    settings = get_settings()

    async def main() -> T:
        database = Database(create_engine(settings))
        try:
            return await work(database, settings)
        finally:
            await database.dispose()

    return asyncio.run(main())
