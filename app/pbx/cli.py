"""`eservice keys …`: the signing keys of the access and hand-off tokens."""

import typer

from app.core.config import get_settings
from app.core.signing import KeyRing
from app.core.state import key_overlap

keys_cli = typer.Typer(help="Signing keys (ES256) and their rotation.", no_args_is_help=True)


def _key_ring() -> KeyRing:
    settings = get_settings()
    return KeyRing(settings.keys_dir, key_overlap(settings))


def _when(value: object) -> str:
    return "-" if value is None else f"{value:%Y-%m-%d %H:%M:%S}Z"


@keys_cli.command("rotate")
def rotate() -> None:
    """Make a new key the signer; the old public keys stay published for the overlap."""
    ring = _key_ring()
    new_key, removed = ring.rotate()
    typer.echo(f"new signing key {new_key.kid}")
    for key in removed:
        typer.echo(f"removed key {key.kid} (retired longer than {ring.overlap} ago)")
    typer.echo("running services pick the new key up within seconds")


@keys_cli.command("list")
def list_keys() -> None:
    """Each key: id, created, retired, and state (signing, published, expired)."""
    rows = _key_ring().describe()
    if not rows:
        typer.echo("no signing keys (run `eservice keys rotate`)")
        return
    typer.echo(f"{'kid':<18} {'state':<10} {'created':<21} retired")
    for row in reversed(rows):
        typer.echo(
            f"{row['kid']:<18} {row['state']:<10} {_when(row['created_at']):<21} "
            f"{_when(row['retired_at'])}"
        )
