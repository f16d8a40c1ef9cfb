"""Liveness and readiness probes."""

from typing import Annotated

from fastapi import Depends, FastAPI
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from sqlalchemy import text

from app.core.db import Database, get_database

_OK = b'{"status":"ok"}'


class Health(BaseModel):
    status: str


async def healthz() -> Response:
    # Pre-encoded: the probe is polled often and its answer never changes.
    return Response(_OK, media_type="application/json")


async def readyz(database: Annotated[Database, Depends(get_database)]) -> Health | JSONResponse:
    try:
        async with database.sessionmaker() as session:
            await session.execute(text("SELECT 1"))
    except Exception:  # any failure to reach the database means "not ready"
        return JSONResponse({"status": "unavailable"}, status_code=503)
    return Health(status="ok")


def add_probe_routes(app: FastAPI) -> None:
    """The probes as routes of the app itself, matched without a pass through a router."""
    app.get(
        "/healthz",
        response_model=Health,
        summary="Liveness: the process answers",
        tags=["health"],
    )(healthz)
    app.get(
        "/readyz",
        response_model=Health,
        summary="Readiness: the database answers",
        tags=["health"],
        responses={503: {"model": Health, "description": "The database is unreachable"}},
    )(readyz)
