"""What the API shows of contracts."""

from pydantic import BaseModel, Field

from app.contracts.models import ContractState


class ContractOut(BaseModel):
    """A contract as cloud.phone management lists it."""

    id: int
    contract_number: str = Field(description='"Vertrags-ID"', examples=["V-4711"])
    product: str = Field(examples=["cloud.phone"])
    label: str | None
    state: ContractState
    can_open_pbx: bool = Field(
        description="Whether the caller may open this contract's PBX web UI now"
    )


class ContractList(BaseModel):
    items: list[ContractOut]
