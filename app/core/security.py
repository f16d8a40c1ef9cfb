"""Password hashing (passlib, argon2id) and random tokens. The only module that imports passlib."""

import asyncio
import functools
import hashlib
import hmac
import secrets
import unicodedata
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from passlib.context import CryptContext

from app.core.config import Settings

_T = TypeVar("_T")


def normalize_password(password: str) -> str:
    """NFKC, so the same password typed on different keyboards is the same password."""
    return unicodedata.normalize("NFKC", password)


# A job for a hashing thread, and the future of the coroutine waiting for its result.
_Job = tuple[Callable[..., Any], tuple[Any, ...], "asyncio.Future[Any]"]


def _run_all(calls: list[tuple[Callable[..., Any], tuple[Any, ...]]]) -> list[tuple[Any, Any]]:
    """In a hashing thread: each call in turn, as (result, None) or (None, the exception)."""
    outcomes: list[tuple[Any, Any]] = []
    for function, args in calls:
        try:
            outcomes.append((function(*args), None))
        except Exception as error:
            outcomes.append((None, error))
    return outcomes


class PasswordHasher:
    """argon2id hashing in worker threads, at most `hash_concurrency` at a time.

    argon2 releases the GIL, so threads run in parallel with the event loop; the cap keeps a
    login flood from allocating one 19 MiB block per request at once. The hasher has its own
    pool of exactly that many threads: a thread that hashes again reuses its memory block,
    still in the CPU's cache, where a fresh thread of the loop's default pool would touch a
    new one (measurably slower hashes under a login flood).

    Hashes that queue up while every thread is busy go to the next free thread together, up
    to BATCH of them, and their callers resume together. The event loop then does the work
    that follows those hashes in one go, with its caches warm, instead of once after each
    hash, after argon2 has evicted them (docs/benchmarks.md, "Where a login's CPU goes"). A
    hash that finds a thread free starts at once, alone.
    """

    BATCH = 4

    def __init__(self, settings: Settings) -> None:
        self._context = CryptContext(
            schemes=["argon2"],
            argon2__type="ID",
            argon2__memory_cost=settings.argon2_memory_cost,
            argon2__rounds=settings.argon2_time_cost,
            argon2__parallelism=settings.argon2_parallelism,
        )
        self._concurrency = settings.hash_concurrency
        self._threads = ThreadPoolExecutor(self._concurrency, thread_name_prefix="argon2")
        self._queue: deque[_Job] = deque()
        self._busy = 0  # threads working on a batch
        self._dummy: str | None = None

    async def _in_thread(self, function: Callable[..., _T], *args: Any) -> _T:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[_T] = loop.create_future()
        self._queue.append((function, args, future))
        self._dispatch(loop)
        return await future

    def _dispatch(self, loop: asyncio.AbstractEventLoop) -> None:
        """Hand queued jobs to the free threads, up to BATCH per thread."""
        while self._busy < self._concurrency and self._queue:
            batch: list[_Job] = []
            while self._queue and len(batch) < self.BATCH:
                job = self._queue.popleft()
                if not job[2].done():  # a caller that gave up waiting needs no hash
                    batch.append(job)
            if not batch:
                return
            calls = [(function, args) for function, args, _ in batch]
            try:
                running = loop.run_in_executor(self._threads, _run_all, calls)
            except RuntimeError as error:  # the threads were shut down (the process stops)
                for _, _, future in batch:
                    future.set_exception(error)
                continue
            self._busy += 1
            running.add_done_callback(functools.partial(self._finished, loop, batch))

    def _finished(
        self,
        loop: asyncio.AbstractEventLoop,
        batch: list[_Job],
        running: "asyncio.Future[list[tuple[Any, Any]]]",
    ) -> None:
        self._busy -= 1
        waiting = [future for _, _, future in batch]
        if running.cancelled():  # the executor shut down before the job ran
            for future in waiting:
                future.cancel()
        elif (failure := running.exception()) is not None:  # not an Exception of one call
            for future in waiting:
                if not future.done():
                    future.set_exception(failure)
        else:
            for future, (result, error) in zip(waiting, running.result(), strict=True):
                if future.done():
                    continue
                if error is None:
                    future.set_result(result)
                else:
                    future.set_exception(error)
        self._dispatch(loop)

    async def _dummy_hash(self) -> str:
        """A hash of a random password, made once, off the event loop like every other."""
        if self._dummy is None:
            hashed: str = await self._in_thread(self._context.hash, secrets.token_urlsafe(16))
            self._dummy = hashed
        return self._dummy

    async def hash(self, password: str) -> str:
        hashed: str = await self._in_thread(self._context.hash, normalize_password(password))
        return hashed

    async def verify(self, password: str, hashed: str | None) -> tuple[bool, str | None]:
        """(matches, new hash if the stored one uses outdated parameters).

        Without a stored hash the password is checked against a dummy hash, so that an unknown
        login costs the same time as a wrong password.
        """
        if hashed is None:
            dummy = await self._dummy_hash()
            await self._in_thread(self._context.verify, normalize_password(password), dummy)
            return False, None
        ok, new_hash = await self._in_thread(
            self._context.verify_and_update, normalize_password(password), hashed
        )
        return bool(ok), new_hash

    def hash_blocking(self, password: str) -> str:
        """For command-line tools that have no event loop to keep responsive."""
        hashed: str = self._context.hash(normalize_password(password))
        return hashed


def new_token() -> str:
    """A single-use secret: 32 random bytes (256 bits), URL-safe."""
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """SHA-256 of a token: what is stored, so a database leak yields no usable token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def tokens_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
