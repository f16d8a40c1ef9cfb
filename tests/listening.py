"""An app served with its lifespan, for the tests of changes that arrive by NOTIFY."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI

from app.core.changes import RecentCache


@asynccontextmanager
async def listening_client(
    app: FastAPI, cache: RecentCache[object, object]
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of `app` once its change listener is connected (and `cache` therefore on)."""
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as client,
    ):
        for _ in range(100):
            if cache.active:
                break
            await asyncio.sleep(0.05)
        assert cache.active, "the listener did not connect"
        yield client
