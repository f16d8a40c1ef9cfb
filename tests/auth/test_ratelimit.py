from datetime import timedelta

import pytest

from app.auth.ratelimit import attempts_in_window, count_attempt, enforce_limit
from app.core.clock import utcnow
from app.core.errors import RateLimited


async def test_counts_and_window(session):
    now = utcnow()
    assert await count_attempt(session, "t:a", window=timedelta(minutes=1), now=now) == (1, now)
    assert (await count_attempt(session, "t:a", window=timedelta(minutes=1), now=now))[0] == 2
    later = now + timedelta(minutes=2)
    assert (await count_attempt(session, "t:a", window=timedelta(minutes=1), now=later))[0] == 1
    assert await attempts_in_window(session, "t:a", window=timedelta(minutes=1), now=later) == 1


async def test_enforce(session):
    now = utcnow()
    for _ in range(3):
        await enforce_limit(session, "t:b", limit=3, window=timedelta(hours=1), now=now)
    with pytest.raises(RateLimited) as info:
        await enforce_limit(session, "t:b", limit=3, window=timedelta(hours=1), now=now)
    assert info.value.retry_after == 3601
