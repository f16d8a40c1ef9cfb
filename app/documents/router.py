"""The documentation menu: the handbook and the configuration guides."""

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import FileResponse, RedirectResponse, Response

from app.core.auth import DocumentReader
from app.core.db import DbSession
from app.core.errors import problem_responses
from app.core.state import AppState, get_state
from app.documents import service
from app.documents.models import DocumentKind
from app.documents.schemas import DocumentList

router = APIRouter(tags=["documents"])

DocumentId = Annotated[int, Path(ge=1, le=2**31 - 1)]


@router.get(
    "/documents",
    response_model=DocumentList,
    summary="The documentation catalogue",
    responses=problem_responses(401, 403, 422),
)
async def list_documents(
    session: DbSession,
    _principal: DocumentReader,
    kind: DocumentKind | None = None,
    product: Annotated[
        str | None, Query(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9._-]+$")
    ] = None,
    language: Annotated[str | None, Query(pattern=r"^[a-z]{2}$")] = None,
) -> DocumentList:
    items = await service.list_documents(session, kind=kind, product=product, language=language)
    return DocumentList(items=items)


@router.get(
    "/documents/{document_id}/content",
    response_class=Response,
    summary="A document's content: the stored file, or a redirect to its external URL",
    responses={
        200: {
            "description": "The stored file",
            "content": {
                "application/pdf": {},
                "text/markdown": {},
                "text/plain": {},
            },
        },
        303: {"description": "The document is an external link"},
        **problem_responses(401, 403, 404, 422),
    },
)
async def document_content(
    document_id: DocumentId,
    session: DbSession,
    _principal: DocumentReader,
    state: Annotated[AppState, Depends(get_state)],
) -> Response:
    content = await service.document_content(session, state.settings, document_id)
    if isinstance(content, service.ExternalLink):
        return RedirectResponse(content.url, status_code=303)
    return FileResponse(
        content.path,
        media_type=content.content_type,
        filename=content.download_name,
        content_disposition_type="inline",
    )
