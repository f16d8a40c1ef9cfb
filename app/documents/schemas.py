"""What the API shows of documents."""

from datetime import datetime

from pydantic import BaseModel, Field

from app.documents.models import DocumentKind


class DocumentOut(BaseModel):
    """A catalogue entry; its content is at `/api/v1/documents/{id}/content`."""

    id: int
    title: str = Field(examples=["Handbuch e:service Kundenportal"])
    kind: DocumentKind
    product: str | None = Field(examples=["cloud.phone"])
    language: str = Field(examples=["de"])
    content_type: str | None = Field(
        description="Type of the stored file; null when the document is an external link"
    )
    url: str | None = Field(description="The external address, for documents that are links")
    created_at: datetime


class DocumentList(BaseModel):
    items: list[DocumentOut]
