"""`eservice documents add`: copies files into the catalogue; bad input is one line."""

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.documents.models import Document
from tests.cli_runner import eservice_settings, invoke_eservice


@pytest.mark.committing
async def test_add_documents_and_bad_inputs(
    session: AsyncSession, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    documents_dir = tmp_path / "documents"
    source = tmp_path / "handbuch.md"
    source.write_text("# Handbuch\n", encoding="utf-8")
    page = tmp_path / "page.html"
    page.write_text("<script>alert(1)</script>", encoding="utf-8")

    def run(*args: str):  # type: ignore[no-untyped-def]
        return invoke_eservice(monkeypatch, "documents", "add", *args)

    with eservice_settings(
        monkeypatch,
        cwd=str(tmp_path),
        database_url=database_url,
        documents_dir=str(documents_dir),
        keys_dir=str(tmp_path / "k"),
    ):
        added = await asyncio.to_thread(
            run, "--title", "Handbuch", "--kind", "handbook", "--file", str(source)
        )
        assert added.exit_code == 0, added.stderr
        linked = await asyncio.to_thread(
            run, "--title", "Datenblatt", "--kind", "guide", "--product", "cloud.phone",
            "--language", "en", "--url", "https://docs.example.net/sheet.pdf",
        )  # fmt: skip
        assert linked.exit_code == 0, linked.stderr

        failures = {
            "no source": ("--title", "T", "--kind", "guide"),
            "both sources": ("--title", "T", "--kind", "guide", "--file", str(source), "--url",
                             "https://docs.example.net/a.pdf"),
            "bad kind": ("--title", "T", "--kind", "poem", "--file", str(source)),
            "missing file": ("--title", "T", "--kind", "guide", "--file",
                             str(tmp_path / "none.md")),
            "html file": ("--title", "T", "--kind", "guide", "--file", str(page)),
            "javascript url": ("--title", "T", "--kind", "guide", "--url", "javascript:alert(1)"),
            "bad language": ("--title", "T", "--kind", "guide", "--language", "deutsch", "--url",
                             "https://docs.example.net/a.pdf"),
            "control characters": ("--title", "T\r\nX", "--kind", "guide", "--url",
                                   "https://docs.example.net/a.pdf"),
        }  # fmt: skip
        for case, args in failures.items():
            result = await asyncio.to_thread(run, *args)
            assert result.exit_code != 0, case
            assert len(result.stderr.strip().splitlines()) == 1, (case, result.stderr)
            assert "Traceback" not in result.stderr, case

    documents = (await session.execute(select(Document).order_by(Document.id))).scalars().all()
    assert [(d.title, d.kind, d.language, d.url) for d in documents] == [
        ("Handbuch", "handbook", "de", None),
        ("Datenblatt", "guide", "en", "https://docs.example.net/sheet.pdf"),
    ]
    stored = documents[0].file_name
    assert stored is not None
    assert (documents_dir / stored).read_text(encoding="utf-8") == "# Handbuch\n"
    assert sorted(path.name for path in documents_dir.iterdir()) == [stored]
