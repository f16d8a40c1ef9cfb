"""The password hasher's threads: the cap, and hashes that queue up going to a thread together."""

import asyncio
import threading
import time
from typing import Any

import pytest

from app.core import security
from app.core.config import Settings
from app.core.security import PasswordHasher


class RecordingContext:
    """Stands in for passlib's CryptContext: records each call; `gate` holds the first one."""

    def __init__(self, *, delay: float = 0.0) -> None:
        self.gate = threading.Event()
        self.started = threading.Event()
        self.seen: list[str] = []
        self.running = 0
        self.most_running = 0
        self.delay = delay
        self._lock = threading.Lock()

    def verify_and_update(self, secret: str, hashed: str) -> tuple[bool, str | None]:
        with self._lock:
            self.seen.append(secret)
            self.running += 1
            self.most_running = max(self.most_running, self.running)
        self.started.set()
        try:
            self.gate.wait(timeout=10)
            time.sleep(self.delay)
            if secret == "raises":
                raise ValueError("a damaged hash")
            return secret == hashed, None
        finally:
            with self._lock:
                self.running -= 1


def hasher_with(settings: Settings, context: RecordingContext, threads: int) -> PasswordHasher:
    hasher = PasswordHasher(settings.model_copy(update={"hash_concurrency": threads}))
    hasher._context = context  # type: ignore[assignment]
    return hasher


@pytest.fixture
def batches(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size of each job handed to a hashing thread."""
    sizes: list[int] = []
    run_all = security._run_all

    def recording(calls: list[Any]) -> list[Any]:
        sizes.append(len(calls))
        return run_all(calls)

    monkeypatch.setattr(security, "_run_all", recording)
    return sizes


async def started(context: RecordingContext) -> None:
    """Until the first call has reached a hashing thread."""
    await asyncio.get_running_loop().run_in_executor(None, context.started.wait, 10)


async def test_hashes_that_queue_up_go_to_the_free_thread_together(
    settings: Settings, batches: list[int]
) -> None:
    context = RecordingContext()
    hasher = hasher_with(settings, context, threads=1)
    first = asyncio.create_task(hasher.verify("p0", "p0"))
    await started(context)
    queued = [asyncio.create_task(hasher.verify(f"p{n}", "p3")) for n in range(1, 7)]
    await asyncio.sleep(0)
    context.gate.set()
    answers = await asyncio.gather(first, *queued)
    # Alone while the thread was free; then BATCH of the queued ones, then the rest.
    assert batches == [1, PasswordHasher.BATCH, 6 - PasswordHasher.BATCH]
    assert context.seen == [f"p{n}" for n in range(7)]
    # Each caller gets the answer to its own password.
    assert answers == [(True, None)] + [(n == 3, None) for n in range(1, 7)]


async def test_never_more_hashes_at_once_than_threads(
    settings: Settings, batches: list[int]
) -> None:
    context = RecordingContext(delay=0.01)
    context.gate.set()
    hasher = hasher_with(settings, context, threads=2)
    answers = await asyncio.gather(*(hasher.verify(f"p{n}", "p5") for n in range(12)))
    assert context.most_running == 2
    assert sorted(context.seen) == sorted(f"p{n}" for n in range(12))
    assert answers == [(n == 5, None) for n in range(12)]
    assert all(size <= PasswordHasher.BATCH for size in batches)


async def test_an_error_in_a_batch_reaches_only_its_own_caller(settings: Settings) -> None:
    context = RecordingContext()
    hasher = hasher_with(settings, context, threads=1)
    first = asyncio.create_task(hasher.verify("p0", "p0"))
    await started(context)
    queued = [asyncio.create_task(hasher.verify(secret, "ok")) for secret in ("ok", "raises")]
    queued.append(asyncio.create_task(hasher.verify("ok", "ok")))
    await asyncio.sleep(0)
    context.gate.set()
    answers = await asyncio.gather(first, *queued, return_exceptions=True)
    assert answers[:2] == [(True, None), (True, None)]
    assert isinstance(answers[2], ValueError)
    assert answers[3] == (True, None)


async def test_a_caller_that_gave_up_while_queued_is_not_hashed(settings: Settings) -> None:
    context = RecordingContext()
    hasher = hasher_with(settings, context, threads=1)
    first = asyncio.create_task(hasher.verify("p0", "p0"))
    await started(context)
    abandoned = asyncio.create_task(hasher.verify("abandoned", "x"))
    kept = asyncio.create_task(hasher.verify("kept", "kept"))
    await asyncio.sleep(0)
    abandoned.cancel()
    context.gate.set()
    assert await first == (True, None)
    assert await kept == (True, None)
    assert abandoned.cancelled()
    assert context.seen == ["p0", "kept"]


async def test_real_hashes_in_one_batch_each_check_their_own_password(
    settings: Settings, batches: list[int]
) -> None:
    hasher = PasswordHasher(settings.model_copy(update={"hash_concurrency": 1}))
    stored = [await hasher.hash(f"passphrase number {n} of five") for n in range(5)]
    batches.clear()
    # Even numbers against their own hash, odd ones against their neighbour's.
    pairs = [(f"passphrase number {n} of five", stored[(n + n % 2) % 5]) for n in range(5)]
    answers = await asyncio.gather(*(hasher.verify(password, hashed) for password, hashed in pairs))
    assert max(batches) > 1
    assert [matches for matches, _ in answers] == [n % 2 == 0 for n in range(5)]


async def test_hashes_after_the_threads_were_shut_down_fail_and_leave_no_thread_counted_busy(
    settings: Settings,
) -> None:
    context = RecordingContext()
    context.gate.set()
    hasher = hasher_with(settings, context, threads=1)
    hasher._threads.shutdown()
    for _ in range(2):  # the second one finds no thread wrongly counted as busy
        with pytest.raises(RuntimeError, match="shutdown"):
            await asyncio.wait_for(hasher.verify("p0", "p0"), timeout=5)
    assert context.seen == []
