"""The shipped handbook and configuration guides, added by `eservice demo`."""

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.documents import repository, service, storage
from app.documents.models import Document, DocumentKind

CONTENT_DIR = Path(__file__).parent / "content"


@dataclass(frozen=True)
class ShippedDocument:
    """One Markdown file in app/documents/content and how it appears in the menu."""

    file: str
    title: str
    kind: DocumentKind
    product: str | None


SHIPPED = (
    ShippedDocument(
        "handbuch-eservice-kundenportal.md",
        "Handbuch e:service Kundenportal",
        DocumentKind.HANDBOOK,
        None,
    ),
    ShippedDocument(
        "anleitung-benutzer-telefonanlage-anlegen.md",
        "Anleitung: Benutzer für die Telefonanlage anlegen",
        DocumentKind.GUIDE,
        "cloud.phone",
    ),
    ShippedDocument(
        "anleitung-cloud-phone-verwaltung-oeffnen.md",
        "Anleitung: cloud.phone Verwaltung öffnen",
        DocumentKind.GUIDE,
        "cloud.phone",
    ),
    ShippedDocument(
        "anleitung-kennwort-und-zugang.md",
        "Anleitung: Kennwort festlegen und Zugang wiederherstellen",
        DocumentKind.GUIDE,
        None,
    ),
)


async def add_demo_documents(session: AsyncSession, settings: Settings) -> list[Document]:
    """Add the shipped documents that are missing; restore their files. Safe to run again."""
    added = []
    for shipped in SHIPPED:
        source = CONTENT_DIR / shipped.file
        existing = await repository.find_by_title(session, shipped.title, "de")
        if existing is not None:
            if existing.file_name == shipped.file:
                # The file may have been removed with var/; put the shipped version back.
                storage.store_copy(settings.documents_dir, source, name=shipped.file)
            continue
        added.append(
            await service.add_document(
                session,
                settings,
                title=shipped.title,
                kind=shipped.kind,
                product=shipped.product,
                language="de",
                source=source,
                stored_name=shipped.file,
            )
        )
    return added
