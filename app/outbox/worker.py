"""`eservice worker`: the background jobs (mail dispatcher, scheduled work) without the API.

Stops cleanly on SIGINT or SIGTERM: the jobs are cancelled between two steps, a round that
is sending finishes nothing half-way in the database (each outcome is its own transaction),
and a claimed but unsent message is picked up again when its lease runs out.
"""

import asyncio
import contextlib
import logging
import signal

from app.core.config import Settings
from app.core.db import Database, create_engine
from app.core.state import build_state

logger = logging.getLogger("app.worker")


async def run_worker(settings: Settings) -> None:
    """Run every background job until SIGINT or SIGTERM arrives."""
    from app.main import background_jobs

    database = Database(create_engine(settings))
    state = build_state(settings, database)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    tasks = [asyncio.create_task(job(state)) for job in background_jobs()]
    logger.info("worker started", extra={"jobs": [job.__name__ for job in background_jobs()]})
    try:
        await stop.wait()
        logger.info("worker stopping")
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await database.dispose()
    logger.info("worker stopped")
