"""Running the alembic migrations from the program, wherever it is started from."""

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection

# Inside the package (app/migrations links to the top-level migrations/ folder), so an
# installed `eservice`, editable or not, finds them from any working directory.
MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(database_url: str | None = None, connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if database_url:
        config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def upgrade_to_head(database_url: str | None = None) -> None:
    """Apply all migrations. Must not be called from inside a running event loop."""
    command.upgrade(alembic_config(database_url), "head")
