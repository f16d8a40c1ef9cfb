"""The service with its argon2 verify replaced by a stand-in, for bench/login_threads.py.

A login's CPU is the hash's and the event loop's. argon2 makes two passes over 19 MiB per
verify, far more than a core's L2 cache, so it also slows the loop's work that follows it.
A stand-in of the same duration that touches almost no memory tells the two effects apart:

- `pbkdf2`: PBKDF2-HMAC-SHA256, which, like argon2, runs in C with the GIL released; its
  iterations are set at start so that one call costs what one argon2 verify costs here;
- `sleep`: no CPU at all; the core idles while the "hash" runs.

Each stand-in answers what the real verify answers: the first time a (password, hash) pair
comes, argon2 verifies it and the answer is kept, so a wrong password still fails. Never
for anything but this bench: the second verify of a pair costs nothing of what argon2 costs.

    uvicorn --app-dir bench --factory standins:pbkdf2_app   (bench/login_threads.py does it)
"""

import hashlib
import statistics
import time
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from app.core.state import AppState
from app.main import create_app

_CALIBRATION_ITERATIONS = 20_000


class StandInContext:
    """What PasswordHasher asks of passlib's CryptContext, with `work` in place of argon2."""

    def __init__(self, real: Any, work: Callable[[], None]) -> None:
        self._real = real
        self._work = work
        self._answers: dict[tuple[str, str], tuple[bool, str | None]] = {}

    def hash(self, secret: str) -> str:
        hashed: str = self._real.hash(secret)
        return hashed

    def verify(self, secret: str, hashed: str) -> bool:
        return self.verify_and_update(secret, hashed)[0]

    def verify_and_update(self, secret: str, hashed: str) -> tuple[bool, str | None]:
        answer = self._answers.get((secret, hashed))
        if answer is None:
            answer = self._real.verify_and_update(secret, hashed)
            self._answers[(secret, hashed)] = answer
        else:
            self._work()
        return answer


def argon2_seconds(context: Any, samples: int = 5) -> float:
    """The median time of one argon2 verify with the service's parameters, in this thread."""
    stored = context.hash("a stand-in calibration password")
    times = []
    for _ in range(samples + 1):
        started = time.perf_counter()
        context.verify("a stand-in calibration password", stored)
        times.append(time.perf_counter() - started)
    return statistics.median(times[1:])


def _pbkdf2(iterations: int) -> None:
    hashlib.pbkdf2_hmac("sha256", b"stand-in", b"stand-in salt", iterations)


def _pbkdf2_work(seconds: float) -> Callable[[], None]:
    _pbkdf2(_CALIBRATION_ITERATIONS)  # warm
    started = time.perf_counter()
    _pbkdf2(_CALIBRATION_ITERATIONS)
    per_iteration = (time.perf_counter() - started) / _CALIBRATION_ITERATIONS
    iterations = max(1, round(seconds / per_iteration))
    return lambda: _pbkdf2(iterations)


def _with_stand_in(make_work: Callable[[float], Callable[[], None]]) -> FastAPI:
    app = create_app()
    state: AppState = app.state.eservice
    hasher: Any = state.hasher
    real = hasher._context
    hasher._context = StandInContext(real, make_work(argon2_seconds(real)))
    return app


def pbkdf2_app() -> FastAPI:
    return _with_stand_in(_pbkdf2_work)


def sleep_app() -> FastAPI:
    return _with_stand_in(lambda seconds: lambda: time.sleep(seconds))
