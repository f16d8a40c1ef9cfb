"""`eservice contracts …`: operator commands for contracts."""

from typing import Annotated

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from app.contracts import service
from app.core.cli_args import checked_text, checked_with, run_in_transaction
from app.core.config import Settings
from app.core.urls import http_base_url

contracts_cli = typer.Typer(help="Customers' contracts.", no_args_is_help=True)

IDENTIFIER = r"[A-Za-z0-9][A-Za-z0-9._/-]*"


@contracts_cli.command("create")
def create(
    customer: Annotated[str, typer.Option("--customer", help="Customer number.")],
    number: Annotated[str, typer.Option("--number", help='Contract number ("Vertrags-ID").')],
    product: Annotated[str, typer.Option(help="Product.")] = "cloud.phone",
    label: Annotated[str | None, typer.Option(help="Label shown to the customer.")] = None,
    pbx_tenant: Annotated[
        str | None, typer.Option("--pbx-tenant", help="Tenant of the cloud PBX.")
    ] = None,
    pbx_url: Annotated[
        str | None,
        typer.Option("--pbx-url", help="PBX web UI base URL (default ESERVICE_PBX_UI_URL)."),
    ] = None,
) -> None:
    """Add a contract to an existing customer."""
    customer = checked_text("--customer", customer, max_length=32, pattern=r"[0-9A-Za-z-]+")
    number = checked_text("--number", number, max_length=32, pattern=IDENTIFIER)
    product = checked_text("--product", product, max_length=32, pattern=IDENTIFIER)
    if label is not None:
        label = checked_text("--label", label, max_length=200)
    if pbx_tenant is not None:
        pbx_tenant = checked_text("--pbx-tenant", pbx_tenant, max_length=100, pattern=IDENTIFIER)
    if pbx_url is not None:
        pbx_url = checked_with("--pbx-url", pbx_url, http_base_url)

    async def work(session: AsyncSession, _settings: Settings) -> int:
        contract = await service.create_contract(
            session,
            customer_number=customer,
            contract_number=number,
            product=product,
            label=label,
            pbx_tenant=pbx_tenant,
            pbx_ui_url=pbx_url,
        )
        return contract.id

    contract_id = run_in_transaction(work)
    typer.echo(f"contract {number} created (id {contract_id})")
