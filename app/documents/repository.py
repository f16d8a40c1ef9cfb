"""Queries on documents."""

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.documents.models import Document, DocumentKind


async def list_documents(
    session: AsyncSession,
    *,
    kind: DocumentKind | None = None,
    product: str | None = None,
    language: str | None = None,
) -> list[Document]:
    query = select(Document)
    if kind is not None:
        query = query.where(Document.kind == kind)
    if product is not None:
        query = query.where(Document.product == product)
    if language is not None:
        query = query.where(Document.language == language)
    # Handbooks first, then guides, each alphabetically.
    result = await session.execute(
        query.order_by(Document.kind.desc(), Document.title, Document.id)
    )
    return list(result.scalars())


async def get(session: AsyncSession, document_id: int) -> Document | None:
    return await session.get(Document, document_id)


async def find_by_title(session: AsyncSession, title: str, language: str) -> Document | None:
    result = await session.execute(
        select(Document)
        .where(Document.title == title, Document.language == language)
        .order_by(Document.id)
        .limit(1)
    )
    return result.scalar_one_or_none()


async def add(session: AsyncSession, document: Document) -> Document:
    session.add(document)
    await session.flush()
    return document
