"""The `eservice` command: thin wrappers that call services. Errors are one line."""

import json
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
import uvicorn

from app.contracts.cli import contracts_cli
from app.core.commands import CommandError, run_with_database
from app.core.config import Settings, UnsafeProductionSettings, get_settings
from app.core.db import Database
from app.core.logging import configure_logging
from app.core.migrate import upgrade_to_head
from app.customers.cli import customers_cli
from app.documents.cli import documents_cli
from app.pbx.cli import keys_cli
from app.users.cli import users_cli

if TYPE_CHECKING:
    from app.demo import DemoData

cli = typer.Typer(
    name="eservice",
    help="e:service portal API: serve, migrate, and operator tasks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
db_cli = typer.Typer(help="Database schema.", no_args_is_help=True)
cli.add_typer(db_cli, name="db")
cli.add_typer(customers_cli, name="customers")
cli.add_typer(users_cli, name="users")
cli.add_typer(contracts_cli, name="contracts")
cli.add_typer(documents_cli, name="documents")
cli.add_typer(keys_cli, name="keys")


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8000,
) -> None:
    """Migrate the database to head, then serve the API with the in-process mail dispatcher."""
    settings = get_settings()
    settings.check_production_safety()
    configure_logging(settings.log_level)
    upgrade_to_head()
    from app.main import create_app

    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        server_header=False,
        date_header=True,
        proxy_headers=True,
        log_config=None,
    )


@cli.command()
def worker() -> None:
    """Run the outbox dispatcher and the scheduled jobs without the API (SIGTERM stops it)."""
    import asyncio

    from app.outbox.worker import run_worker

    settings = get_settings()
    settings.check_production_safety()
    configure_logging(settings.log_level)
    asyncio.run(run_worker(settings))


@db_cli.command("upgrade")
def db_upgrade() -> None:
    """Apply all database migrations."""
    upgrade_to_head()
    typer.echo("database is at the newest revision")


@cli.command()
def demo(
    password: Annotated[
        str | None,
        typer.Option(help="Password of the demo portal admin (default: a generated one)."),
    ] = None,
) -> None:
    """Load the demo customer 2300229 with its users and contract (idempotent)."""
    from app.core.security import PasswordHasher
    from app.demo import demo_password, load_demo

    settings = get_settings()
    if settings.environment == "production":
        raise CommandError("demo data is not loaded in production")
    chosen = demo_password(password, settings)
    upgrade_to_head()

    async def work(database: Database, settings: Settings) -> "DemoData":
        async with database.sessionmaker.begin() as session:
            return await load_demo(session, settings, PasswordHasher(settings), chosen)

    data = run_with_database(work)
    typer.echo(f"demo data ready: {', '.join(data.created) or 'nothing new'}")
    typer.echo(f"  customer {data.customer_number}, cloud.phone contract {data.contract_number}")
    typer.echo(
        f"  invited PBX admin {data.invited_login}: invitation queued in the outbox"
        f" (mail backend {settings.mail_backend}, {settings.mail_dir}/)"
    )
    typer.echo(f"log in at {settings.frontend_url}/docs with")
    typer.echo(f"  login ID: {data.admin_login}")
    typer.echo(f"  password: {data.admin_password}")


@cli.command()
def openapi(
    check: Annotated[bool, typer.Option("--check", help="Fail if the file differs.")] = False,
    path: Annotated[Path, typer.Option(help="Where the spec lives.")] = Path(
        "openapi/openapi.json"
    ),
) -> None:
    """Write the OpenAPI document to openapi/openapi.json, or check that it is current."""
    from app.main import create_app

    settings = get_settings().model_copy(update={"run_dispatcher": False})
    spec = json.dumps(create_app(settings).openapi(), indent=2, ensure_ascii=False) + "\n"
    if check:
        if not path.is_file() or path.read_text(encoding="utf-8") != spec:
            raise CommandError(f"{path} is not current; run `eservice openapi`")
        typer.echo(f"{path} is current")
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(spec, encoding="utf-8")
    typer.echo(f"wrote {path}")


def _thread_failure(args: threading.ExceptHookArgs) -> None:
    """Failures in helper threads are one line too.

    aiosqlite's worker thread may still answer a failed connect after asyncio.run() has
    closed the loop ("Event loop is closed"); the command has already reported the error.
    """
    if isinstance(args.exc_value, RuntimeError) and "Event loop is closed" in str(args.exc_value):
        return
    print(f"eservice: {args.exc_type.__name__}: {args.exc_value}".splitlines()[0], file=sys.stderr)


def main() -> None:
    """Entry point: every failure becomes one line on stderr and a non-zero exit status."""
    threading.excepthook = _thread_failure
    try:
        cli(standalone_mode=False)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        print("eservice: aborted", file=sys.stderr)
        sys.exit(1)
    except (CommandError, UnsafeProductionSettings) as exc:
        print(f"eservice: {exc}", file=sys.stderr)
        sys.exit(1)
    except Exception as exc:
        # typer's usage errors (bad option, missing argument) carry format_message().
        format_message = getattr(exc, "format_message", None)
        if type(exc).__name__ == "NoArgsIsHelpError":
            # A command group without its sub-command: help on stdout, one line on stderr.
            print(exc)
            print("eservice: missing command (see --help)", file=sys.stderr)
            sys.exit(2)
        if callable(format_message):
            print(f"eservice: {format_message()}", file=sys.stderr)
            sys.exit(2)
        print(f"eservice: {type(exc).__name__}: {exc}".splitlines()[0], file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
