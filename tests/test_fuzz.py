"""The fuzz gate: every operation of the OpenAPI document, generated inputs, three identities.

Schemathesis drives the app in-process (ASGI) on its own event-loop thread, so this module's
app has its own engine and really commits; the seeded rows and whatever the fuzzer created
are deleted afterwards. Checks: no 5xx ever, and every documented answer matches its schema.
Operations added later join automatically; the example budget keeps the suite fast.
"""

import asyncio
import atexit
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app.audit.service import INSERT_EVENT
from app.auth.sessions import authenticate
from app.contracts.cache import PbxTargets
from app.core.config import Settings
from app.core.db import Database, create_engine
from app.core.group_commit import GroupCommit
from app.core.models import metadata
from app.core.permissions import Role
from app.core.state import build_state
from app.main import create_app
from tests.factories import auth_headers, create_contract, create_customer, create_user

MAX_EXAMPLES = 15
CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
    content_type_conformance,
]

# Schemathesis reads the document when this module is imported, before any fixture exists:
# the app is built here with placeholder settings (nothing connects to their database), and
# the `fuzz_app` fixture gives it the test database and keys before the first request.
_placeholder_keys = tempfile.TemporaryDirectory(prefix="eservice-fuzz-")
atexit.register(_placeholder_keys.cleanup)
_placeholder = Settings(
    _env_file=None,  # type: ignore[call-arg]
    environment="test",
    database_url="sqlite+aiosqlite:///:memory:",
    keys_dir=Path(_placeholder_keys.name),
    run_dispatcher=False,
)
app = create_app(_placeholder, Database(create_engine(_placeholder)), run_background=False)
schema = schemathesis.openapi.from_asgi("/openapi.json", app)


@pytest.fixture(scope="module")
def fuzz_settings(
    database_url: str, keys_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        environment="test",
        database_url=database_url,
        keys_dir=keys_dir,
        mail_dir=tmp_path_factory.mktemp("fuzz-mail"),
        argon2_memory_cost=1024,
        argon2_time_cost=1,
        run_dispatcher=False,
        jwt_issuer="http://testserver",
        frontend_url="https://portal.example.com",
        portal_url="https://portal.example.com",
    )


def _run_with_own_engine(fuzz_settings: Settings, work: Any) -> Any:
    """Run `work(database)` in a fresh loop with a fresh engine (not the fuzzed app's)."""

    async def main() -> Any:
        database = Database(create_engine(fuzz_settings))
        try:
            return await work(database)
        finally:
            await database.dispose()

    return asyncio.run(main())


@pytest.fixture(scope="module")
def seeded(fuzz_settings: Settings) -> Iterator[dict[str, int]]:
    """A customer with a user of each role and a contract, committed; removed after."""

    async def seed(database: Database) -> dict[str, int]:
        state = build_state(fuzz_settings, database)
        async with database.sessionmaker.begin() as session:
            customer = await create_customer(session)
            admin = await create_user(session, state, customer, role=Role.CUSTOMER_PORTAL_ADMIN)
            pbx = await create_user(session, state, customer, role=Role.PBX_ADMIN)
            accounting = await create_user(session, state, customer, role=Role.CUSTOMER_ACCOUNTING)
            await create_contract(session, customer)
            return {"admin": admin.id, "pbx": pbx.id, "accounting": accounting.id}

    async def clean(database: Database) -> None:
        async with database.sessionmaker.begin() as session:
            for table in reversed(metadata.sorted_tables):
                await session.execute(table.delete())

    yield _run_with_own_engine(fuzz_settings, seed)
    _run_with_own_engine(fuzz_settings, clean)


@pytest.fixture
def identities(fuzz_settings: Settings, seeded: dict[str, int]) -> dict[str, dict[str, str]]:
    """Anonymous, and a fresh real session per operation for each seeded user.

    Fresh per operation, so that fuzzing logout (or a password change) cannot leave the other
    operations anonymous.
    """
    from app.users.models import UserAccount

    async def sessions(database: Database) -> dict[str, dict[str, str]]:
        state = build_state(fuzz_settings, database)
        headers: dict[str, dict[str, str]] = {"anonymous": {}}
        async with database.sessionmaker.begin() as session:
            for name, user_id in seeded.items():
                user = await session.get(UserAccount, user_id)
                assert user is not None
                headers[name] = await auth_headers(session, state, user)
        return headers

    result: dict[str, dict[str, str]] = _run_with_own_engine(fuzz_settings, sessions)
    return result


@pytest.fixture(scope="module", autouse=True)
def fuzz_app(fuzz_settings: Settings, seeded: dict[str, int]) -> FastAPI:
    """The module's app, now on the test database. Its engine connects lazily, on the
    schemathesis event-loop thread where the app runs, and is never used from another loop."""
    database = Database(create_engine(fuzz_settings))
    state = build_state(
        fuzz_settings,
        database,
        authenticator=authenticate,
        # The hand-off reads its contract on every request (the cache is off).
        pbx_targets=PbxTargets(active=False, max_age=0),
        lone_events=GroupCommit(database, INSERT_EVENT),
    )
    state.keys.ensure_key(may_generate=True)
    app.state.eservice = state
    return app


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    # The same examples on every run: a gate that fails only now and then blocks whoever
    # happens to meet it; a new finding comes with a change of the spec or the code.
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_api(case: Any, identities: dict[str, dict[str, str]]) -> None:
    for headers in identities.values():
        response = case.call(headers=headers or None)
        case.validate_response(response, checks=CHECKS, headers=headers or None)


def test_gate_covers_every_operation(fuzz_app: FastAPI) -> None:
    """The gate is generic: it sees every operation the app documents."""
    documented = {
        f"{method.upper()} {path}"
        for path, operations in fuzz_app.openapi()["paths"].items()
        for method in operations
    }
    fuzzed = {
        f"{op.method.upper()} {op.path}" for op in (r.ok() for r in schema.get_all_operations())
    }
    assert {"GET /healthz", "GET /readyz"} <= fuzzed
    assert fuzzed == documented


def test_identities_are_real_sessions(
    fuzz_settings: Settings, seeded: dict[str, int], identities: dict[str, dict[str, str]]
) -> None:
    """The authenticated passes really are authenticated, as each seeded user."""

    async def principals(database: Database) -> dict[str, int]:
        state = build_state(fuzz_settings, database, authenticator=authenticate)
        found: dict[str, int] = {}
        for name, headers in identities.items():
            if headers:
                token = headers["Authorization"].removeprefix("Bearer ")
                found[name] = (await state.authenticate(token)).user.id
        return found

    assert _run_with_own_engine(fuzz_settings, principals) == seeded
    assert identities["anonymous"] == {}
