"""A fresh database per run: create, migrate, seed the bench's accounts, drop afterwards."""

import asyncio
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import asyncpg
from server import SERVER_CORES
from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.sessions import start_session
from app.contracts.models import Contract, ContractState
from app.core.clock import utcnow
from app.core.config import Settings
from app.core.db import Database, create_engine
from app.core.permissions import Role
from app.core.state import build_state
from app.customers.models import Customer, EServiceState
from app.users.models import Language, UserAccount
from app.users.status import UserStatus

ROOT = Path(__file__).resolve().parents[1]
POSTGRES_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"

PASSWORD = "bench horse battery staple 2026"  # noqa: S105 - a throwaway bench account
USER_PREFIX = "bench.user"
ADMIN_LOGIN = "bench.admin"
PBX_LOGIN = "bench.pbx"
# Long enough that one token obtained at the start serves every scenario of a run.
TOKEN_TTL = timedelta(hours=12)
TOKEN_TTL_ISO = f"PT{int(TOKEN_TTL.total_seconds())}S"


class MigrationFailed(RuntimeError):
    """`eservice db upgrade` exited non-zero."""


@dataclass(frozen=True)
class Seeded:
    """What the scenarios need to know about the seeded data."""

    contract_id: int
    list_users: int
    admin_token: str
    pbx_token: str


def service_env(database_url: str, keys_dir: Path) -> dict[str, str]:
    """The environment of the service under test (and of `eservice db upgrade`)."""
    return {
        "ESERVICE_DATABASE_URL": database_url,
        "ESERVICE_KEYS_DIR": str(keys_dir),
        "ESERVICE_RUN_DISPATCHER": "false",
        "ESERVICE_ACCESS_LOG": "false",
        "ESERVICE_LOG_LEVEL": "WARNING",
        "ESERVICE_MAIL_BACKEND": "console",
        "ESERVICE_ACCESS_TOKEN_TTL": TOKEN_TTL_ISO,
        "ESERVICE_SESSION_IDLE_TTL": TOKEN_TTL_ISO,
        "ESERVICE_SESSION_TTL": TOKEN_TTL_ISO,
        # One hashing thread per core the service is pinned to (the default counts all cores
        # of the machine, which taskset does not change).
        "ESERVICE_HASH_CONCURRENCY": str(SERVER_CORES),
    }


def service_settings(env: dict[str, str]) -> Settings:
    """The same settings in this process, for seeding and for the hashing measurement."""
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=env["ESERVICE_DATABASE_URL"],
        keys_dir=Path(env["ESERVICE_KEYS_DIR"]),
        run_dispatcher=False,
        access_token_ttl=TOKEN_TTL,
        session_idle_ttl=TOKEN_TTL,
        session_ttl=TOKEN_TTL,
        hash_concurrency=SERVER_CORES,
    )


@contextmanager
def fresh_database(kind: str, workdir: Path) -> Iterator[str]:
    """A new, empty database; PostgreSQL's is dropped afterwards, SQLite's goes with workdir."""
    if kind == "sqlite":
        yield f"sqlite+aiosqlite:///{workdir / 'bench.db'}"
        return
    name = f"eservice_bench_{secrets.token_hex(4)}"
    asyncio.run(_postgres_admin(f'CREATE DATABASE "{name}"'))
    try:
        yield POSTGRES_URL.format(name=name)
    finally:
        asyncio.run(_postgres_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _postgres_admin(statement: str) -> None:
    connection = await asyncpg.connect(POSTGRES_ADMIN_DSN)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def migrate(env: dict[str, str]) -> None:
    """`eservice db upgrade`, as an operator runs it."""
    eservice = Path(sys.executable).with_name("eservice")
    done = subprocess.run(
        [str(eservice), "db", "upgrade"],
        env={**os.environ, **env},
        cwd=ROOT,
        check=False,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise MigrationFailed(done.stderr.strip() or done.stdout.strip())


def seed(settings: Settings, list_users: int) -> Seeded:
    return asyncio.run(_seed(settings, list_users))


async def _seed(settings: Settings, list_users: int) -> Seeded:
    database = Database(create_engine(settings))
    state = build_state(settings, database)
    # The service loads the same key folder, so tokens minted here verify there.
    state.keys.ensure_key(may_generate=True)
    password_hash = state.hasher.hash_blocking(PASSWORD)
    try:
        async with database.sessionmaker.begin() as session:
            customer = Customer(
                customer_number="9900001", name="Bench GmbH", eservice_state=EServiceState.ACTIVE
            )
            session.add(customer)
            await session.flush()
            admin = _account(customer.id, ADMIN_LOGIN, Role.CUSTOMER_PORTAL_ADMIN, password_hash)
            pbx = _account(customer.id, PBX_LOGIN, Role.PBX_ADMIN, password_hash)
            contract = Contract(
                customer_id=customer.id,
                contract_number="V-BENCH-1",
                product="cloud.phone",
                label="Cloud-Telefonanlage",
                state=ContractState.ACTIVE,
                pbx_tenant="tenant-bench",
            )
            session.add_all([admin, pbx, contract])
            await session.flush()
            await _insert_list_users(session, customer.id, list_users, password_hash)
            # Statistics, as autovacuum would have gathered them on a database in service.
            await session.execute(text("ANALYZE"))
            admin_tokens = await start_session(state, session, admin)
            pbx_tokens = await start_session(state, session, pbx)
            return Seeded(
                contract_id=contract.id,
                list_users=list_users,
                admin_token=admin_tokens.access_token,
                pbx_token=pbx_tokens.access_token,
            )
    finally:
        await database.dispose()


def _account(customer_id: int, login: str, role: Role, password_hash: str) -> UserAccount:
    now = utcnow()
    return UserAccount(
        customer_id=customer_id,
        login=login,
        login_key=UserAccount.key_for(login),
        role=role,
        status=UserStatus.ACTIVE,
        first_name="Bench",
        last_name=login,
        email=f"{login}@example.com",
        language=Language.DE,
        password_hash=password_hash,
        password_set_at=now,
    )


async def _insert_list_users(
    session: AsyncSession, customer_id: int, count: int, password_hash: str
) -> None:
    """Bulk insert with one executemany per batch: 100,000 rows in seconds, not minutes."""
    now = utcnow()
    table = UserAccount.__table__
    batch = 10_000
    for start in range(0, count, batch):
        rows = [
            {
                "customer_id": customer_id,
                "login": f"{USER_PREFIX}{number:06d}",
                "login_key": f"{USER_PREFIX}{number:06d}",
                "role": Role.PBX_ADMIN,
                "status": UserStatus.ACTIVE,
                "first_name": "Bench",
                "last_name": f"User {number:06d}",
                "email": f"user{number:06d}@bench.example.com",
                "phone": None,
                "mobile": None,
                "language": Language.DE,
                "password_hash": password_hash,
                "password_set_at": now,
                "created_at": now,
                "updated_at": now,
                "version": 1,
            }
            for number in range(start, min(start + batch, count))
        ]
        await session.execute(insert(table), rows)
