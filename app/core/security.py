"""Password hashing (passlib, argon2id) and random tokens. The only module that imports passlib."""

import asyncio
import hashlib
import hmac
import secrets
import unicodedata
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from passlib.context import CryptContext

from app.core.config import Settings

_T = TypeVar("_T")


def normalize_password(password: str) -> str:
    """NFKC, so the same password typed on different keyboards is the same password."""
    return unicodedata.normalize("NFKC", password)


class PasswordHasher:
    """argon2id hashing in worker threads, at most `hash_concurrency` at a time.

    argon2 releases the GIL, so threads run in parallel with the event loop; the cap keeps a
    login flood from allocating one 19 MiB block per request at once. The hasher has its own
    pool of exactly that many threads: a thread that hashes again reuses its memory block,
    still in the CPU's cache, where a fresh thread of the loop's default pool would touch a
    new one (measurably slower hashes under a login flood).
    """

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
        self._semaphore: asyncio.Semaphore | None = None
        self._dummy: str | None = None

    @property
    def _slots(self) -> asyncio.Semaphore:
        if self._semaphore is None:
            self._semaphore = asyncio.Semaphore(self._concurrency)
        return self._semaphore

    async def _in_thread(self, function: Callable[..., _T], *args: Any) -> _T:
        return await asyncio.get_running_loop().run_in_executor(self._threads, function, *args)

    async def _dummy_hash(self) -> str:
        """A hash of a random password, made once, off the event loop like every other."""
        if self._dummy is None:
            hashed: str = await self._in_thread(self._context.hash, secrets.token_urlsafe(16))
            self._dummy = hashed
        return self._dummy

    async def hash(self, password: str) -> str:
        async with self._slots:
            hashed: str = await self._in_thread(self._context.hash, normalize_password(password))
            return hashed

    async def verify(self, password: str, hashed: str | None) -> tuple[bool, str | None]:
        """(matches, new hash if the stored one uses outdated parameters).

        Without a stored hash the password is checked against a dummy hash, so that an unknown
        login costs the same time as a wrong password.
        """
        async with self._slots:
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
