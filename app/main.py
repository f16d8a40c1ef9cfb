"""create_app(): middleware, error handlers, routers and background work. No business code."""

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

from fastapi import FastAPI

from app.api import include_routers
from app.audit.service import INSERT_EVENT
from app.auth import cache as accounts
from app.auth.cache import PrincipalCache
from app.auth.sessions import CachedAuthenticator
from app.auth.throttle import prune_throttles_periodically
from app.contracts import cache as contracts
from app.contracts.cache import PbxTargets
from app.core.checkpoints import checkpoint_periodically
from app.core.config import Settings, get_settings
from app.core.db import Database, create_engine, sqlite_connect_args
from app.core.errors import install_error_handlers
from app.core.group_commit import GroupCommit
from app.core.middleware import EdgeMiddleware, ProblemCORSMiddleware
from app.core.notifications import Listening, listen_for_changes
from app.core.openapi import install_problem_documentation
from app.core.state import AppState, build_state
from app.invitations.jobs import run_invitation_scheduler
from app.outbox.dispatcher import run_dispatcher
from app.users.expiry import run_expiry_sweep

BackgroundJob = Callable[[AppState], Coroutine[Any, Any, None]]


def background_jobs() -> list[BackgroundJob]:
    """What runs beside the API in `eservice serve` (and alone in `eservice worker`)."""
    return [
        prune_throttles_periodically,
        run_invitation_scheduler,
        run_dispatcher,
        run_expiry_sweep,
    ]


def create_app(
    settings: Settings | None = None,
    database: Database | None = None,
    *,
    run_background: bool | None = None,
) -> FastAPI:
    settings = settings or get_settings()
    settings.check_production_safety()
    owns_database = database is None
    database = database or Database(create_engine(settings))
    # On SQLite (one API process) every change made by the API reaches the caches in-process;
    # on PostgreSQL a cache only answers while it hears of every other process's changes.
    cache = PrincipalCache(
        active=settings.auth_cache and settings.is_sqlite,
        max_age=settings.auth_cache_max_age.total_seconds(),
    )
    targets = PbxTargets(
        active=settings.contract_cache and settings.is_sqlite,
        max_age=settings.contract_cache_max_age.total_seconds(),
    )
    listening: dict[str, Listening] = {}
    if settings.auth_cache:
        listening[accounts.CHANNEL] = cache
    if settings.contract_cache:
        listening[contracts.CHANNEL] = targets
    lone_events = GroupCommit(database, INSERT_EVENT)
    state = build_state(
        settings,
        database,
        authenticator=CachedAuthenticator(cache),
        pbx_targets=targets,
        lone_events=lone_events,
    )
    state.keys.ensure_key(may_generate=settings.environment != "production")
    run_jobs = settings.run_dispatcher if run_background is None else run_background

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        tasks: list[asyncio.Task[None]] = (
            [asyncio.create_task(job(state)) for job in background_jobs()] if run_jobs else []
        )
        if listening and not settings.is_sqlite:
            listener = listen_for_changes(settings.database_url, listening)
            tasks.append(asyncio.create_task(listener))
        if settings.is_sqlite and owns_database:
            # The process that owns the connection checkpoints the WAL off the event loop.
            connect_args = sqlite_connect_args(settings.database_url)
            tasks.append(asyncio.create_task(checkpoint_periodically(connect_args)))
        # What exists by now (the app, its routes and models, the libraries' tables) lives as
        # long as the process: the cycle collector leaves it out of every later collection
        # instead of walking it again each time (docs/architecture.md, "Garbage collection").
        gc.freeze()
        try:
            yield
        finally:
            gc.unfreeze()
            await lone_events.close()
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if owns_database:
                await database.dispose()

    app = FastAPI(
        title="e:service portal API",
        version="1.0.0",
        summary="Customer portal of a telecom provider: users, invitations, cloud PBX hand-off.",
        lifespan=lifespan,
        swagger_ui_parameters={"persistAuthorization": False},
        # The documentation routes are added after the API's (below), so that routing, which
        # tries routes in order, reaches the probes and the API first.
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.eservice = state
    install_error_handlers(app)
    include_routers(app)
    app.openapi_url, app.docs_url, app.redoc_url = "/openapi.json", "/docs", "/redoc"
    app.setup()
    install_problem_documentation(app)
    if settings.cors_origins:
        app.add_middleware(
            ProblemCORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "If-Match"],
            expose_headers=["ETag", "Location", "Retry-After", "X-Request-ID"],
        )
    app.add_middleware(EdgeMiddleware, access_log=settings.access_log)
    return app
