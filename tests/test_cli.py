"""The installed `eservice` command, run as a subprocess from a foreign working directory."""

import asyncio
import os
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from app.core.config import Settings
from app.core.security import PasswordHasher
from app.demo import ADMIN_LOGIN, CONTRACT_NUMBER, CUSTOMER_NUMBER, INVITED_LOGIN

ESERVICE = Path(sys.executable).parent / "eservice"
DEMO_PASSWORD = "a demo passphrase for the cli test"


@dataclass
class Workspace:
    """A temp working directory with its own SQLite file, keys and mail folder."""

    cwd: Path
    database: Path
    env: dict[str, str]

    def run(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: S603 - our own console script, fixed arguments
            [str(ESERVICE), *args],
            cwd=self.cwd,
            env={**self.env, **env},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def query(self, sql: str) -> list[tuple[object, ...]]:
        with sqlite3.connect(self.database) as connection:
            return connection.execute(sql).fetchall()


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    database = tmp_path / "var" / "cli.db"  # the folder does not exist yet, as on a fresh clone
    env = {name: value for name, value in os.environ.items() if not name.startswith("ESERVICE_")}
    env.update(
        ESERVICE_DATABASE_URL=f"sqlite+aiosqlite:///{database}",
        ESERVICE_KEYS_DIR=str(tmp_path / "keys"),
        ESERVICE_MAIL_DIR=str(tmp_path / "mail"),
        ESERVICE_ARGON2_MEMORY_COST="1024",
        ESERVICE_ARGON2_TIME_COST="1",
    )
    return Workspace(cwd=cwd, database=database, env=env)


def assert_one_line_failure(result: subprocess.CompletedProcess[str], fragment: str) -> None:
    assert result.returncode != 0
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("eservice: ")
    assert fragment in lines[0]
    assert "Traceback" not in result.stderr + result.stdout


def test_script_is_installed() -> None:
    assert ESERVICE.is_file()


def test_db_upgrade_from_another_directory(workspace: Workspace) -> None:
    result = workspace.run("db", "upgrade")
    assert result.returncode == 0, result.stderr
    tables = {row[0] for row in workspace.query("SELECT name FROM sqlite_master")}
    assert {"customers", "user_accounts", "contracts", "alembic_version"} <= tables
    assert not any(workspace.cwd.iterdir()), "nothing is written to the working directory"


def test_demo_is_idempotent(workspace: Workspace) -> None:
    first = workspace.run("demo")
    assert first.returncode == 0, first.stderr
    assert f"login ID: {ADMIN_LOGIN}" in first.stdout
    generated = first.stdout.split("password: ")[1].split()[0]
    assert len(generated) >= 15

    second = workspace.run("demo", "--password", DEMO_PASSWORD)
    assert second.returncode == 0, second.stderr
    assert "nothing new" in second.stdout
    assert f"password: {DEMO_PASSWORD}" in second.stdout

    assert workspace.query("SELECT customer_number, name, eservice_state FROM customers") == [
        (CUSTOMER_NUMBER, "Muster GmbH", "active")
    ]
    users = workspace.query(
        "SELECT login, role, status, first_name, last_name FROM user_accounts ORDER BY id"
    )
    assert users == [
        (ADMIN_LOGIN, "customer_portal_admin", "active", "Max", "Muster"),
        (INVITED_LOGIN, "pbx_admin", "invited", "Paula", "Beispiel"),
    ]
    assert workspace.query("SELECT contract_number, product, state FROM contracts") == [
        (CONTRACT_NUMBER, "cloud.phone", "active")
    ]
    mails = workspace.query("SELECT kind, recipient, body_text FROM outbox_messages")
    assert len(mails) == 1
    kind, recipient, body = mails[0]
    assert (kind, recipient) == ("invitation", "paula.beispiel@muster.example")
    assert INVITED_LOGIN in str(body)
    assert "#token=" in str(body)
    documents = workspace.query("SELECT kind, language FROM documents ORDER BY id")
    assert ("handbook", "de") in documents
    assert sum(1 for kind, _ in documents if kind == "guide") >= 2
    assert workspace.query("SELECT sent_count FROM invitations") == [(1,)]

    [(stored_hash,)] = workspace.query(
        f"SELECT password_hash FROM user_accounts WHERE login = '{ADMIN_LOGIN}'"  # noqa: S608
    )
    hasher = PasswordHasher(Settings(_env_file=None))  # type: ignore[call-arg]
    assert asyncio.run(hasher.verify(DEMO_PASSWORD, str(stored_hash)))[0]
    assert not asyncio.run(hasher.verify(generated, str(stored_hash)))[0]


@pytest.mark.parametrize(
    ("status", "action"), [("locked", "user.unlocked"), ("disabled", "user.enabled")]
)
def test_demo_makes_its_admin_usable_again(workspace: Workspace, status: str, action: str) -> None:
    assert workspace.run("demo").returncode == 0
    workspace.query(
        f"UPDATE user_accounts SET status = '{status}', expires_at = '2000-01-01 00:00:00.000000'"  # noqa: S608
        f" WHERE login = '{ADMIN_LOGIN}'"
    )
    workspace.query(
        "INSERT INTO login_throttles (key, failures, window_started_at, updated_at)"  # noqa: S608
        f" VALUES ('login:{ADMIN_LOGIN}', 100, '2000-01-01 00:00:00', '2099-01-01 00:00:00')"
    )
    again = workspace.run("demo", "--password", DEMO_PASSWORD)
    assert again.returncode == 0, again.stderr
    assert workspace.query(
        f"SELECT status, expires_at FROM user_accounts WHERE login = '{ADMIN_LOGIN}'"  # noqa: S608
    ) == [("active", None)]
    assert workspace.query("SELECT key FROM login_throttles") == []
    events = workspace.query("SELECT action, details FROM audit_events ORDER BY id")
    assert [event for event, _ in events].count(action) == 1


def test_openapi_write_and_check(workspace: Workspace) -> None:
    spec = workspace.cwd / "spec" / "openapi.json"
    written = workspace.run("openapi", "--path", str(spec))
    assert written.returncode == 0, written.stderr
    assert '"openapi": "3.1' in spec.read_text(encoding="utf-8")
    assert workspace.run("openapi", "--check", "--path", str(spec)).returncode == 0

    spec.write_text(spec.read_text(encoding="utf-8").replace("healthz", "health"), "utf-8")
    assert_one_line_failure(workspace.run("openapi", "--check", "--path", str(spec)), "not current")
    missing = workspace.cwd / "missing.json"
    assert_one_line_failure(workspace.run("openapi", "--check", "--path", str(missing)), "not")


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["frobnicate"], "No such command"),
        (["serve", "--port", "eighty"], "--port"),
        (["serve", "--bogus"], "--bogus"),
        (["demo", "--password"], "--password"),
        (["demo", "--password", "too short"], "at least 15"),
        (["demo", "--password", "yfdbufnjh10305070"], "commonly used"),
        (["db"], "missing command"),
    ],
)
def test_bad_input_is_one_line(workspace: Workspace, args: list[str], fragment: str) -> None:
    assert_one_line_failure(workspace.run(*args), fragment)


@pytest.mark.parametrize("command", [["serve"], ["openapi", "--path", "x.json"]])
def test_production_refuses_unsafe_settings(workspace: Workspace, command: list[str]) -> None:
    result = workspace.run(*command, ESERVICE_ENVIRONMENT="production")
    assert_one_line_failure(result, "refusing to start in production")
    assert "SQLite" in result.stderr
    assert "no signing keys" in result.stderr
    assert not workspace.database.exists(), "nothing was migrated"


def test_demo_refused_in_production(workspace: Workspace) -> None:
    assert_one_line_failure(
        workspace.run("demo", ESERVICE_ENVIRONMENT="production"), "not loaded in production"
    )


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+asyncpg://postgres@127.0.0.1:1/none",
        "sqlite+aiosqlite:///{cwd}",  # a folder, not a file: SQLite cannot open it
    ],
    ids=["postgresql", "sqlite"],
)
def test_unreachable_database_is_one_line(workspace: Workspace, url: str) -> None:
    url = url.format(cwd=workspace.cwd)
    assert_one_line_failure(workspace.run("db", "upgrade", ESERVICE_DATABASE_URL=url), "")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def served(workspace: Workspace) -> Iterator[str]:
    """`eservice serve` on a free port: it migrates the empty database itself."""
    port = _free_port()
    process = subprocess.Popen(  # noqa: S603 - our own console script
        [str(ESERVICE), "serve", "--port", str(port)],
        cwd=workspace.cwd,
        env=workspace.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"serve exited: {process.stderr.read() if process.stderr else ''}")
            try:
                httpx.get(f"{base}/healthz", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        process.communicate(timeout=10)


def test_serve_migrates_and_answers_without_server_banner(
    served: str, workspace: Workspace
) -> None:
    health = httpx.get(f"{served}/healthz", timeout=5)
    assert health.status_code == 200
    assert "server" not in health.headers
    assert health.headers["x-content-type-options"] == "nosniff"
    ready = httpx.get(f"{served}/readyz", timeout=5)
    assert ready.status_code == 200
    assert workspace.query("SELECT version_num FROM alembic_version")
    missing = httpx.get(f"{served}/api/v1/nothing", timeout=5)
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
