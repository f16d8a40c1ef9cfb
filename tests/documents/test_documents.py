"""The documentation menu: listing, content, missing files, paths outside the folder."""

from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.permissions import Role
from app.core.state import AppState
from app.documents import service
from app.documents.demo import SHIPPED, add_demo_documents
from app.documents.models import Document, DocumentKind
from tests.factories import auth_headers, create_customer, create_user


async def _headers(session: AsyncSession, state: AppState, role: Role) -> dict[str, str]:
    customer = await create_customer(session)
    user = await create_user(session, state, customer, role=role)
    return await auth_headers(session, state, user)


async def _markdown_document(session: AsyncSession, state: AppState, tmp_path: Path) -> Document:
    source = tmp_path / "Anleitung Rufgruppen.md"
    source.write_text("# Rufgruppen\n\nSo legen Sie eine Rufgruppe an.\n", encoding="utf-8")
    return await service.add_document(
        session,
        state.settings,
        title="Anleitung: Rufgruppen",
        kind=DocumentKind.GUIDE,
        product="cloud.phone",
        source=source,
    )


@pytest.mark.parametrize("role", list(Role))
async def test_every_role_lists_and_reads_documents(
    role: Role, client: httpx.AsyncClient, session: AsyncSession, state: AppState, tmp_path: Path
) -> None:
    stored = await _markdown_document(session, state, tmp_path)
    link = await service.add_document(
        session,
        state.settings,
        title="Datenblatt cloud.phone",
        kind=DocumentKind.HANDBOOK,
        url="https://docs.example.net/cloud-phone.pdf",
    )
    headers = await _headers(session, state, role)

    response = await client.get("/api/v1/documents", headers=headers)
    assert response.status_code == 200
    items = {item["id"]: item for item in response.json()["items"]}
    assert items[stored.id]["title"] == "Anleitung: Rufgruppen"
    assert items[stored.id]["kind"] == "guide"
    assert items[stored.id]["content_type"] == "text/markdown; charset=utf-8"
    assert items[stored.id]["url"] is None
    assert items[link.id]["url"] == "https://docs.example.net/cloud-phone.pdf"

    content = await client.get(f"/api/v1/documents/{stored.id}/content", headers=headers)
    assert content.status_code == 200
    assert content.headers["content-type"] == "text/markdown; charset=utf-8"
    assert content.text.startswith("# Rufgruppen")
    assert "Anleitung-Rufgruppen.md" in content.headers["content-disposition"]
    assert content.headers["content-disposition"].startswith("inline")

    redirect = await client.get(f"/api/v1/documents/{link.id}/content", headers=headers)
    assert redirect.status_code == 303
    assert redirect.headers["location"] == "https://docs.example.net/cloud-phone.pdf"


async def test_filters(
    client: httpx.AsyncClient, session: AsyncSession, state: AppState, tmp_path: Path
) -> None:
    guide = await _markdown_document(session, state, tmp_path)
    headers = await _headers(session, state, Role.CUSTOMER_ACCOUNTING)
    response = await client.get(
        "/api/v1/documents",
        params={"kind": "guide", "product": "cloud.phone", "language": "de"},
        headers=headers,
    )
    assert guide.id in [item["id"] for item in response.json()["items"]]
    response = await client.get("/api/v1/documents", params={"kind": "handbook"}, headers=headers)
    assert guide.id not in [item["id"] for item in response.json()["items"]]
    response = await client.get("/api/v1/documents", params={"kind": "poem"}, headers=headers)
    assert response.status_code == 422


async def test_anonymous_gets_401(client: httpx.AsyncClient) -> None:
    for path in ("/api/v1/documents", "/api/v1/documents/1/content"):
        response = await client.get(path)
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"


async def test_missing_file_is_404_problem(
    client: httpx.AsyncClient, session: AsyncSession, state: AppState, tmp_path: Path
) -> None:
    document = await _markdown_document(session, state, tmp_path)
    assert document.file_name is not None
    (state.settings.documents_dir / document.file_name).unlink()
    headers = await _headers(session, state, Role.PBX_ADMIN)
    response = await client.get(f"/api/v1/documents/{document.id}/content", headers=headers)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "not_found"
    unknown = await client.get("/api/v1/documents/2147483647/content", headers=headers)
    assert unknown.status_code == 404


@pytest.mark.parametrize(
    "file_name", ["../outside.md", "../../etc/passwd", "/etc/passwd", "sub/../../outside.md", ".."]
)
async def test_never_serves_a_path_outside_the_folder(
    file_name: str,
    client: httpx.AsyncClient,
    session: AsyncSession,
    state: AppState,
    tmp_path: Path,
) -> None:
    state.settings.documents_dir.mkdir(parents=True, exist_ok=True)
    (tmp_path / "outside.md").write_text("secret", encoding="utf-8")
    document = Document(
        title="Kaputt", kind=DocumentKind.GUIDE, file_name=file_name, content_type="text/plain"
    )
    session.add(document)
    await session.flush()
    headers = await _headers(session, state, Role.PBX_ADMIN)
    response = await client.get(f"/api/v1/documents/{document.id}/content", headers=headers)
    assert response.status_code == 404
    assert "secret" not in response.text


async def test_demo_documents_are_german_and_idempotent(
    client: httpx.AsyncClient, session: AsyncSession, state: AppState
) -> None:
    first = await add_demo_documents(session, state.settings)
    assert len(first) == len(SHIPPED)
    assert [d.kind for d in first].count(DocumentKind.HANDBOOK) == 1
    assert [d.kind for d in first].count(DocumentKind.GUIDE) >= 2
    # The stored copy of a demo file may vanish (var/ removed); running again restores it.
    assert first[0].file_name is not None
    (state.settings.documents_dir / first[0].file_name).unlink()
    again = await add_demo_documents(session, state.settings)
    assert again == []
    count = await session.scalar(
        select(func.count())
        .select_from(Document)
        .where(Document.title.in_([s.title for s in SHIPPED]))
    )
    assert count == len(SHIPPED)

    headers = await _headers(session, state, Role.PBX_ADMIN)
    listed = (await client.get("/api/v1/documents", headers=headers)).json()["items"]
    assert listed[0]["title"] == "Handbuch e:service Kundenportal"
    for document in first:
        response = await client.get(f"/api/v1/documents/{document.id}/content", headers=headers)
        assert response.status_code == 200
        assert len(response.text) > 2000
        assert "Kundenportal" in response.text
        assert response.text.startswith(f"# {document.title}")
