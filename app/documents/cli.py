"""`eservice documents …`: operator commands for the documentation catalogue."""

from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.cli_args import checked_text, checked_with, run_in_transaction
from app.core.commands import CommandError
from app.core.config import Settings
from app.core.urls import http_url
from app.documents import service
from app.documents.models import DocumentKind

documents_cli = typer.Typer(help="The documentation catalogue.", no_args_is_help=True)


@documents_cli.command("add")
def add(
    title: Annotated[str, typer.Option(help="Title shown in the documentation menu.")],
    kind: Annotated[DocumentKind, typer.Option(help="handbook or guide.")],
    product: Annotated[str | None, typer.Option(help="Product, e.g. cloud.phone.")] = None,
    language: Annotated[str, typer.Option(help="Language code.")] = "de",
    url: Annotated[str | None, typer.Option(help="External address of the document.")] = None,
    file: Annotated[
        Path | None, typer.Option(help="A PDF, Markdown or text file to copy into the catalogue.")
    ] = None,
) -> None:
    """Add a document: an external URL, or a copy of a file in ESERVICE_DOCUMENTS_DIR."""
    title = checked_text("--title", title, max_length=200)
    if product is not None:
        product = checked_text("--product", product, max_length=32, pattern=r"[A-Za-z0-9._-]+")
    language = checked_text("--language", language, max_length=2, pattern=r"[a-z]{2}")
    if (url is None) == (file is None):
        raise CommandError("give exactly one of --url and --file")
    if url is not None:
        url = checked_with("--url", url, http_url)

    async def work(session: AsyncSession, settings: Settings) -> int:
        document = await service.add_document(
            session,
            settings,
            title=title,
            kind=kind,
            product=product,
            language=language,
            url=url,
            source=file,
        )
        return document.id

    document_id = run_in_transaction(work)
    typer.echo(f"document {document_id} added: {title}")
