"""The operator commands, run as the installed `eservice` against the test database."""

import asyncio
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select

from app.cli import main
from app.core.config import get_settings
from app.core.permissions import Role
from app.customers.models import Customer, EServiceState
from app.customers.service import hash_activation_code
from app.invitations.models import Invitation
from app.users.models import UserAccount
from app.users.status import UserStatus
from tests.factories import unique
from tests.invitations.outbox_helpers import queued_mails

pytestmark = pytest.mark.committing

ESERVICE = Path(sys.executable).with_name("eservice")


@dataclass
class Outcome:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def eservice(database_url, tmp_path, database, monkeypatch, capsys):
    """Run the real `main()` with these arguments, as the installed command would.

    It runs in a worker thread: the command starts its own event loop with asyncio.run().
    (`database` is the committing one, so the tables are emptied afterwards.)
    """
    for key in list(os.environ):
        if key.startswith("ESERVICE_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("ESERVICE_DATABASE_URL", database_url)
    monkeypatch.setenv("ESERVICE_ENVIRONMENT", "test")
    monkeypatch.chdir(tmp_path)

    def invoke(args: tuple[str, ...]) -> int:
        monkeypatch.setattr(sys, "argv", ["eservice", *args])
        get_settings.cache_clear()
        try:
            main()
        except SystemExit as exc:
            return int(exc.code or 0)
        finally:
            get_settings.cache_clear()
        return 0

    async def run(*args: str) -> Outcome:
        capsys.readouterr()
        returncode = await asyncio.to_thread(invoke, args)
        captured = capsys.readouterr()
        return Outcome(returncode, captured.out, captured.err)

    return run


def _one_line_error(result: Outcome) -> str:
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


async def test_installed_command_runs_from_any_directory(database_url, database, tmp_path):
    env = {key: value for key, value in os.environ.items() if not key.startswith("ESERVICE_")}
    env.update(ESERVICE_DATABASE_URL=database_url, ESERVICE_ENVIRONMENT="test")
    number = unique("88")
    process = await asyncio.create_subprocess_exec(
        str(ESERVICE),
        *("customers", "create", "--number", number, "--name", "Muster GmbH"),
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode == 0, stderr.decode()
    code = stdout.decode().strip().splitlines()[-1]
    async with database.sessionmaker() as session:
        stored = await session.scalar(
            select(Customer.activation_code_hash).where(Customer.customer_number == number)
        )
    assert stored == hash_activation_code(code)


async def test_customers_create_prints_the_code_last(eservice, database):
    number = unique("88")
    result = await eservice("customers", "create", "--number", number, "--name", "Muster GmbH")
    assert result.returncode == 0, result.stderr
    code = result.stdout.strip().splitlines()[-1]
    assert len(code) == 19
    async with database.sessionmaker() as session:
        customer = (
            await session.execute(select(Customer).where(Customer.customer_number == number))
        ).scalar_one()
        assert customer.name == "Muster GmbH"
        assert customer.eservice_state == EServiceState.PENDING
        assert customer.activation_code_hash == hash_activation_code(code)

    duplicate = await eservice("customers", "create", "--number", number, "--name", "Other AG")
    assert duplicate.returncode == 1
    assert "already exists" in _one_line_error(duplicate)


@pytest.mark.parametrize(
    "args",
    [
        ["customers", "create", "--number", "1"],
        ["customers", "create", "--number", "", "--name", "X"],
        ["customers", "create", "--number", "1", "--name", "   "],
        ["customers", "create", "--number", "1", "--name", "A\nB"],
        ["customers", "create", "--number", "1" * 33, "--name", "X"],
    ],
)
async def test_customers_create_bad_input(eservice, args):
    _one_line_error(await eservice(*args))


async def test_users_invite_bootstraps_the_first_admin(eservice, database):
    number = unique("88")
    created = await eservice("customers", "create", "--number", number, "--name", "Muster GmbH")
    assert created.returncode == 0, created.stderr
    args = [
        "users", "invite", "--customer", number, "--login", "customer" + number,
        "--role", "customer_portal_admin", "--first-name", "{{7*7}}", "--last-name", "Muster",
        "--email", "max@example.com",
    ]  # fmt: skip
    result = await eservice(*args)
    assert result.returncode == 0, result.stderr
    assert "customer" + number in result.stdout
    async with database.sessionmaker() as session:
        user = (
            await session.execute(
                select(UserAccount).where(UserAccount.login == "customer" + number)
            )
        ).scalar_one()
        assert (user.role, user.status) == (Role.CUSTOMER_PORTAL_ADMIN, UserStatus.INVITED)
        invitation = await session.get(Invitation, user.id)
        assert invitation is not None
        assert invitation.sent_count == 1
        [mail] = await queued_mails(session, user.id, "invitation")
        assert "Guten Tag {{7*7}} Muster" in mail.body_text

    taken = await eservice(*args)
    assert taken.returncode == 1
    assert "already taken" in _one_line_error(taken)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"--customer": "no-such-customer"}, "no customer"),
        ({"--login": "a b"}, "--login"),
        ({"--email": "nope"}, "--email"),
        ({"--first-name": "Max\r\nBcc: x@example.com"}, "--first-name"),
        ({"--role": "superuser"}, "--role"),
    ],
)
async def test_users_invite_bad_input(eservice, database, change, message):
    number = unique("88")
    created = await eservice("customers", "create", "--number", number, "--name", "X")
    assert created.returncode == 0
    options = {
        "--customer": number,
        "--login": unique("admin."),
        "--role": "customer_portal_admin",
        "--first-name": "Max",
        "--last-name": "Muster",
        "--email": "max@example.com",
        **change,
    }
    result = await eservice("users", "invite", *(part for item in options.items() for part in item))
    assert message in _one_line_error(result)
    async with database.sessionmaker() as session:
        assert (await session.execute(select(UserAccount.id))).first() is None
