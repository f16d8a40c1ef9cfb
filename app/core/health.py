"""Liveness and readiness probes."""

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import text

from app.core.db import Database, get_database

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: str


@router.get("/healthz", response_model=Health, summary="Liveness: the process answers")
async def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Health,
    summary="Readiness: the database answers",
    responses={503: {"model": Health, "description": "The database is unreachable"}},
)
async def readyz(database: Annotated[Database, Depends(get_database)]) -> Health | JSONResponse:
    try:
        async with database.sessionmaker() as session:
            await session.execute(text("SELECT 1"))
    except Exception:  # any failure to reach the database means "not ready"
        return JSONResponse({"status": "unavailable"}, status_code=503)
    return Health(status="ok")
