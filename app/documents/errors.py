"""Errors of the documentation catalogue."""

from app.core.errors import AppError, NotFound


class DocumentNotFound(NotFound):
    """No such document, or its stored file is gone."""

    code, title = "not_found", "Document not found"


class UnsupportedDocumentFile(AppError):
    """Only PDF, Markdown and plain text files are stored (nothing a browser would run)."""

    status, code, title = 422, "unsupported_document", "This kind of file is not supported"
