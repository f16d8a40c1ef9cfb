"""Document files under ESERVICE_DOCUMENTS_DIR: storing a copy, finding it again safely."""

import re
import secrets
import shutil
from pathlib import Path

from app.documents.errors import UnsupportedDocumentFile

# Types a browser shows but never executes; HTML or SVG could run script in the API's origin.
CONTENT_TYPES = {
    ".pdf": "application/pdf",
    ".md": "text/markdown; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
}
MAX_FILE_BYTES = 50 * 1024 * 1024
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def content_type_for(source: Path) -> str:
    content_type = CONTENT_TYPES.get(source.suffix.lower())
    if content_type is None:
        allowed = ", ".join(sorted(CONTENT_TYPES))
        raise UnsupportedDocumentFile(f"{source.name}: only {allowed} files are supported")
    return content_type


def safe_name(name: str) -> str:
    """A file name of letters, digits, `.`, `_`, `-` only (for storage and downloads)."""
    cleaned = _UNSAFE.sub("-", name).strip(".-") or "document"
    return cleaned[-100:]


def store_copy(documents_dir: Path, source: Path, *, name: str | None = None) -> str:
    """Copy `source` into the documents folder; the stored file's bare name.

    With `name`, the file is stored (and overwritten) under that fixed name, as the demo
    documents are; otherwise under a fresh random prefix so nothing is overwritten.
    """
    if not source.is_file():
        raise UnsupportedDocumentFile(f"{source} is not a readable file")
    if source.stat().st_size > MAX_FILE_BYTES:
        raise UnsupportedDocumentFile(f"{source.name} is larger than 50 MiB")
    documents_dir.mkdir(parents=True, exist_ok=True)
    file_name = safe_name(name) if name else f"{secrets.token_hex(6)}-{safe_name(source.name)}"
    shutil.copyfile(source, documents_dir / file_name)
    return file_name


def stored_path(documents_dir: Path, file_name: str) -> Path | None:
    """The stored file, if it exists inside the documents folder (never a path outside it)."""
    if not file_name or "/" in file_name or "\\" in file_name or file_name in (".", ".."):
        return None
    root = documents_dir.resolve()
    path = (root / file_name).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        return None
    return path


def download_name(file_name: str) -> str:
    """The name offered to the browser: the stored name without its random prefix."""
    prefix, _, rest = file_name.partition("-")
    return (
        rest
        if rest and len(prefix) == 12 and all(c in "0123456789abcdef" for c in prefix)
        else file_name
    )
