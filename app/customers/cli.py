"""`eservice customers ...`: the operator adds customers and prints their activation code."""

from typing import Annotated

import typer
from pydantic import TypeAdapter, ValidationError
from sqlalchemy.exc import IntegrityError

from app.core.commands import CommandError, run_with_database
from app.core.config import Settings
from app.core.db import Database
from app.core.errors import error_for_integrity_error
from app.customers import errors as customer_errors  # noqa: F401 - registers the unique number
from app.customers.schemas import CustomerName, CustomerNumber
from app.customers.service import create_customer

customers_cli = typer.Typer(help="Customers and their e:service activation.", no_args_is_help=True)


def _valid(adapter: TypeAdapter[str], value: str, option: str) -> str:
    try:
        return adapter.validate_python(value)
    except ValidationError as exc:
        raise CommandError(f"{option}: {exc.errors()[0]['msg']}") from None


@customers_cli.command("create")
def create(
    number: Annotated[str, typer.Option("--number", help="Customer number, e.g. 2300229.")],
    name: Annotated[str, typer.Option("--name", help="The customer's name.")],
) -> None:
    """Add a customer (e:service pending); the last line printed is its activation code."""
    customer_number = _valid(TypeAdapter(CustomerNumber), number, "--number")
    customer_name = _valid(TypeAdapter(CustomerName), name, "--name")

    async def work(database: Database, _settings: Settings) -> str:
        try:
            async with database.sessionmaker.begin() as session:
                _customer, code = await create_customer(
                    session, customer_number=customer_number, name=customer_name
                )
        except IntegrityError as exc:
            error = error_for_integrity_error(exc)
            if error is None:
                raise
            raise CommandError(f"customer {customer_number} already exists") from None
        return code

    code = run_with_database(work)
    typer.echo(f"created customer {customer_number} ({customer_name}); activation code:")
    typer.echo(code)
