"""`eservice worker` as a real process, and the dispatcher loop's resilience."""

import asyncio
import contextlib
import logging
import os
import signal
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from app.core.config import Settings
from app.core.db import Database, create_engine
from app.core.state import AppState
from app.main import background_jobs
from app.outbox.dispatcher import run_dispatcher
from app.outbox.models import DeliveryState, OutboxMessage
from tests.factories import create_customer
from tests.outbox.helpers import invite

ESERVICE = Path(sys.executable).parent / "eservice"


def test_dispatcher_is_a_background_job() -> None:
    assert run_dispatcher in background_jobs()


async def wait_for(predicate: object, seconds: float = 20.0) -> bool:
    assert callable(predicate)
    deadline = asyncio.get_running_loop().time() + seconds
    while asyncio.get_running_loop().time() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.05)
    return False


@pytest.mark.committing
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_worker_delivers_and_stops_cleanly_on_signal(
    state: AppState, database_url: str, keys_dir: Path, tmp_path: Path, signum: int
) -> None:
    async with state.database.sessionmaker.begin() as session:
        customer = await create_customer(session)
        _user, invitation = await invite(session, state, customer)
    mail_dir = tmp_path / "mail-out"
    env = {key: value for key, value in os.environ.items() if not key.startswith("ESERVICE_")} | {
        "ESERVICE_ENVIRONMENT": "test",
        "ESERVICE_DATABASE_URL": database_url,
        "ESERVICE_KEYS_DIR": str(keys_dir),
        "ESERVICE_MAIL_BACKEND": "file",
        "ESERVICE_MAIL_DIR": str(mail_dir),
        "ESERVICE_DISPATCHER_INTERVAL": "0.1",
    }
    process = await asyncio.create_subprocess_exec(
        str(ESERVICE),
        "worker",
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        delivered = await wait_for(lambda: mail_dir.is_dir() and any(mail_dir.glob("*.eml")))
        process.send_signal(signum)
        _stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=20)
    finally:
        if process.returncode is None:
            process.kill()
            with contextlib.suppress(ProcessLookupError):
                await process.wait()
    assert delivered, stderr.decode()
    assert process.returncode == 0, stderr.decode()
    assert b"worker stopped" in stderr
    assert b"Traceback" not in stderr
    assert b"token=" not in stderr
    async with state.database.sessionmaker() as session:
        row = await session.get(OutboxMessage, invitation.outbox_message_id)
        assert row is not None
        assert row.state == DeliveryState.SENT


class FailureCounter(logging.Handler):
    """Counts failed rounds and wakes the test after `wanted` of them."""

    def __init__(self, wanted: int) -> None:
        super().__init__(logging.ERROR)
        self.wanted = wanted
        self.count = 0
        self.enough = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage() == "outbox dispatch round failed":
            self.count += 1
            if self.count >= self.wanted:
                self.enough.set()


async def test_loop_survives_failing_rounds(state: AppState, tmp_path: Path) -> None:
    # A database that cannot be opened: every round fails.
    url = f"sqlite+aiosqlite:///{tmp_path / 'missing' / 'eservice.db'}"
    broken_settings = state.settings.model_copy(update={"dispatcher_interval": 0.001})
    broken = replace(
        state,
        settings=broken_settings,
        database=Database(create_engine(Settings(_env_file=None, database_url=url))),  # type: ignore[call-arg]
    )
    counter = FailureCounter(wanted=3)
    logger = logging.getLogger("app.outbox")
    logger.addHandler(counter)
    task = asyncio.create_task(run_dispatcher(broken))
    try:
        await asyncio.wait_for(counter.enough.wait(), timeout=30)
        assert not task.done()  # still looping after three failed rounds
    finally:
        logger.removeHandler(counter)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await broken.database.dispose()
