"""Documents of the documentation menu: the handbook and configuration guides."""

from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.clock import utcnow
from app.core.db import Base, UTCDateTime
from app.core.types import str_enum


class DocumentKind(StrEnum):
    """A handbook (the whole portal) or a guide (one task, step by step)."""

    HANDBOOK = "handbook"
    GUIDE = "guide"


class Document(Base):
    """One entry of the documentation catalogue: either an external URL or a stored file.

    `file_name` is a bare name inside ESERVICE_DOCUMENTS_DIR, never a path: the catalogue
    cannot point the content endpoint at any other file of the server.
    """

    __tablename__ = "documents"
    __table_args__ = (CheckConstraint("(url IS NULL) <> (file_name IS NULL)", name="url_or_file"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    kind: Mapped[DocumentKind] = mapped_column(str_enum(DocumentKind, length=16))
    product: Mapped[str | None] = mapped_column(String(32))
    language: Mapped[str] = mapped_column(String(8), default="de")
    url: Mapped[str | None] = mapped_column(String(500))
    file_name: Mapped[str | None] = mapped_column(String(255))
    content_type: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
