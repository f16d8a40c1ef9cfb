"""cloud.phone management: the contracts of the signed-in user's customer."""

from typing import Annotated

from fastapi import APIRouter, Query

from app.contracts import service
from app.contracts.schemas import ContractList
from app.core.auth import ContractReader
from app.core.db import DbSession
from app.core.errors import problem_responses

router = APIRouter(tags=["contracts"])


@router.get(
    "/contracts",
    response_model=ContractList,
    summary="The contracts of the caller's customer",
    responses=problem_responses(401, 403, 422),
)
async def list_contracts(
    session: DbSession,
    principal: ContractReader,
    product: Annotated[
        str | None,
        Query(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9._-]+$", examples=["cloud.phone"]),
    ] = None,
) -> ContractList:
    return ContractList(items=await service.list_contracts(session, principal, product=product))
