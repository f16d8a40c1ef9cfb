"""`eservice contracts create`: adds contracts; bad input is one line and a non-zero exit."""

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.contracts.models import Contract
from tests.cli_runner import eservice_settings, invoke_eservice
from tests.factories import create_customer


@pytest.mark.committing
async def test_create_contract_and_bad_inputs(
    session: AsyncSession, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    customer = await create_customer(session, number="4711001")
    await session.commit()

    def run(*args: str):  # type: ignore[no-untyped-def]
        return invoke_eservice(monkeypatch, "contracts", "create", *args)

    with eservice_settings(
        monkeypatch, cwd=str(tmp_path), database_url=database_url, keys_dir=str(tmp_path / "k")
    ):
        created = await asyncio.to_thread(
            run,
            "--customer", "4711001",
            "--number", "V-100",
            "--label", "Zentrale Köln",
            "--pbx-tenant", "koeln-1",
            "--pbx-url", "https://pbx-west.example.org/",
        )  # fmt: skip
        assert created.exit_code == 0, created.stderr
        assert "V-100" in created.stdout

        failures = {
            "unknown customer": ("--customer", "999999", "--number", "V-101"),
            "duplicate number": ("--customer", "4711001", "--number", "V-100"),
            "javascript url": ("--customer", "4711001", "--number", "V-102", "--pbx-url",
                               "javascript:alert(1)"),
            "ftp url": ("--customer", "4711001", "--number", "V-103", "--pbx-url",
                        "ftp://pbx.example.org"),
            "url with query": ("--customer", "4711001", "--number", "V-104", "--pbx-url",
                               "https://pbx.example.org/?x=1"),
            "bad number": ("--customer", "4711001", "--number", "V 105"),
            "long label": ("--customer", "4711001", "--number", "V-106", "--label", "x" * 201),
            "missing number": ("--customer", "4711001"),
            "unknown option": ("--customer", "4711001", "--number", "V-107", "--colour", "red"),
        }  # fmt: skip
        for case, args in failures.items():
            result = await asyncio.to_thread(run, *args)
            assert result.exit_code != 0, case
            assert len(result.stderr.strip().splitlines()) == 1, (case, result.stderr)
            assert result.stderr.startswith("eservice: "), case
            assert "Traceback" not in result.stderr, case
        assert "999999" in (await asyncio.to_thread(run, *failures["unknown customer"])).stderr

    contracts = (
        (await session.execute(select(Contract).where(Contract.customer_id == customer.id)))
        .scalars()
        .all()
    )
    assert [(c.contract_number, c.pbx_tenant, c.pbx_ui_url, c.label) for c in contracts] == [
        ("V-100", "koeln-1", "https://pbx-west.example.org", "Zentrale Köln")
    ]
