"""What one running app holds: settings, database, signing keys, password hasher."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from fastapi import Request

from app.core.config import Settings
from app.core.db import Database
from app.core.group_commit import GroupCommit
from app.core.security import PasswordHasher
from app.core.signing import KeyRing

if TYPE_CHECKING:
    from app.contracts.cache import PbxTargets
    from app.core.auth import Principal

# Clock skew tolerated between this service and a PBX verifying its tokens.
CLOCK_SKEW = timedelta(seconds=30)

Authenticator = Callable[["AppState", str], Awaitable["Principal"]]


@dataclass
class AppState:
    """The process-wide parts every request may need, built once by create_app()."""

    settings: Settings
    database: Database
    keys: KeyRing
    hasher: PasswordHasher
    authenticator: Authenticator | None = None
    # The hand-off's contract lookups and audit events (app/contracts/cache.py,
    # app/core/group_commit.py); create_app() sets both.
    pbx_targets: "PbxTargets | None" = None
    lone_events: GroupCommit | None = None

    async def authenticate(self, access_token: str) -> "Principal":
        if self.authenticator is None:
            raise RuntimeError("create_app() sets the authenticator")
        return await self.authenticator(self, access_token)


def key_overlap(settings: Settings) -> timedelta:
    """How long a retired key stays published: the longest token lifetime, plus skew."""
    return max(settings.access_token_ttl, settings.pbx_token_ttl) + CLOCK_SKEW


def build_state(settings: Settings, database: Database, **extra: Any) -> AppState:
    return AppState(
        settings=settings,
        database=database,
        keys=KeyRing(settings.keys_dir, key_overlap(settings)),
        hasher=PasswordHasher(settings),
        **extra,
    )


def state_of(request: Request) -> AppState:
    """The app's state, read off the request (where a dependency of its own would cost more
    than it does: on the hot paths)."""
    state: AppState = request.app.state.eservice
    return state


async def get_state(request: Request) -> AppState:
    """The app's state, as a dependency (async: FastAPI runs plain functions in a thread)."""
    return state_of(request)
