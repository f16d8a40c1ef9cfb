"""The documentation catalogue: listing, delivering content, and the operator adding entries."""

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.documents import repository, storage
from app.documents.errors import DocumentNotFound
from app.documents.models import Document, DocumentKind
from app.documents.schemas import DocumentOut


@dataclass(frozen=True)
class StoredFile:
    """A document's content kept in the documents folder."""

    path: Path
    content_type: str
    download_name: str


@dataclass(frozen=True)
class ExternalLink:
    """A document that lives at an external URL."""

    url: str


def document_out(document: Document) -> DocumentOut:
    return DocumentOut(
        id=document.id,
        title=document.title,
        kind=document.kind,
        product=document.product,
        language=document.language,
        content_type=document.content_type,
        url=document.url,
        created_at=document.created_at,
    )


async def list_documents(
    session: AsyncSession,
    *,
    kind: DocumentKind | None = None,
    product: str | None = None,
    language: str | None = None,
) -> list[DocumentOut]:
    """The catalogue, handbooks first."""
    documents = await repository.list_documents(
        session, kind=kind, product=product, language=language
    )
    return [document_out(document) for document in documents]


async def document_content(
    session: AsyncSession, settings: Settings, document_id: int
) -> StoredFile | ExternalLink:
    """The document's file inside the documents folder, or its URL; 404 when either is gone."""
    document = await repository.get(session, document_id)
    if document is None:
        raise DocumentNotFound("No such document.")
    if document.url:
        return ExternalLink(document.url)
    path = storage.stored_path(settings.documents_dir, document.file_name or "")
    if path is None:
        raise DocumentNotFound("The document's file is not available.")
    return StoredFile(
        path=path,
        content_type=document.content_type or "application/octet-stream",
        download_name=storage.download_name(path.name),
    )


async def add_document(
    session: AsyncSession,
    settings: Settings,
    *,
    title: str,
    kind: DocumentKind,
    product: str | None = None,
    language: str = "de",
    url: str | None = None,
    source: Path | None = None,
    stored_name: str | None = None,
) -> Document:
    """Add a catalogue entry for a URL, or for a copy of `source` in the documents folder."""
    if (url is None) == (source is None):
        raise ValueError("a document has either a URL or a file")
    file_name = content_type = None
    if source is not None:
        content_type = storage.content_type_for(source)
        file_name = storage.store_copy(settings.documents_dir, source, name=stored_name)
    return await repository.add(
        session,
        Document(
            title=title,
            kind=kind,
            product=product,
            language=language,
            url=url,
            file_name=file_name,
            content_type=content_type,
        ),
    )
