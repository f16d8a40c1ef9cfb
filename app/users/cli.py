"""`eservice users ...`: the operator's bootstrap of a customer's first administrator."""

from typing import Annotated

import typer
from pydantic import BaseModel, ConfigDict, ValidationError
from sqlalchemy.exc import IntegrityError

from app.audit.service import Actor
from app.core.commands import CommandError, run_with_database
from app.core.config import Settings
from app.core.db import Database
from app.core.errors import error_for_integrity_error
from app.core.permissions import Role
from app.customers.repository import find_customer_by_number
from app.customers.service import NewAccount, invite_account
from app.users.fields import Email, LoginId, PersonName

users_cli = typer.Typer(help="User accounts.", no_args_is_help=True)

OPERATOR = Actor(None, "operator")


class _InviteOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    login: LoginId
    first_name: PersonName
    last_name: PersonName
    email: Email


@users_cli.command("invite")
def invite(
    customer: Annotated[str, typer.Option("--customer", help="Customer number.")],
    login: Annotated[str, typer.Option("--login", help="Login ID of the new account.")],
    role: Annotated[Role, typer.Option("--role", help="Role of the new account.")],
    first_name: Annotated[str, typer.Option("--first-name")],
    last_name: Annotated[str, typer.Option("--last-name")],
    email: Annotated[str, typer.Option("--email")],
) -> None:
    """Create an `invited` account (e.g. the first portal admin) and queue its invitation."""
    try:
        options = _InviteOptions(
            login=login, first_name=first_name, last_name=last_name, email=email
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        field = "--" + str(first["loc"][0]).replace("_", "-")
        raise CommandError(f"{field}: {first['msg']}") from None
    account = NewAccount(
        login=options.login,
        first_name=options.first_name,
        last_name=options.last_name,
        email=str(options.email),
        role=role,
    )

    async def work(database: Database, settings: Settings) -> int:
        try:
            async with database.sessionmaker.begin() as session:
                found = await find_customer_by_number(session, customer.strip())
                if found is None:
                    raise CommandError(f"no customer with number {customer.strip()!r}")
                user = await invite_account(session, settings, found.id, account, actor=OPERATOR)
                return user.id
        except IntegrityError as exc:
            error = error_for_integrity_error(exc)
            if error is None:
                raise
            raise CommandError(f"login {account.login!r}: {error.title}") from None

    user_id = run_with_database(work)
    typer.echo(f"invited {account.login} (user id {user_id}); the invitation mail is queued")
