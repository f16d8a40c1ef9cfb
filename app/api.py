"""The one visible list of routers, with their prefixes and tags."""

from fastapi import FastAPI

from app.audit.router import router as audit_router
from app.auth.router import router as auth_router
from app.core.health import router as health_router
from app.users.router import router as users_router

API_V1 = "/api/v1"


def include_routers(app: FastAPI) -> None:
    app.include_router(health_router)
    app.include_router(auth_router, prefix=API_V1)
    app.include_router(users_router, prefix=API_V1)
    app.include_router(audit_router, prefix=API_V1)
