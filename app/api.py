"""The one visible list of routers, with their prefixes and tags."""

from fastapi import FastAPI

from app.audit.router import router as audit_router
from app.auth.account_router import router as account_router
from app.auth.router import router as auth_router
from app.contracts.router import router as contracts_router
from app.core.health import add_probe_routes
from app.customers.router import router as customers_router
from app.documents.router import router as documents_router
from app.invitations.router import router as invitations_router
from app.pbx.router import add_jwks_route
from app.pbx.router import router as pbx_router
from app.users.router import router as users_router

API_V1 = "/api/v1"


def include_routers(app: FastAPI) -> None:
    # Routes are matched in this order, one after the other (a request to the last router
    # is tried against every route before it). The probes and the JWKS, which machines poll
    # most often, come first, as routes of the app itself rather than of an included router;
    # then the API's routers by how often a portal in service is asked: the profile on every
    # page load; contracts and the hand-off, which every user opens the PBX by; the login
    # once per session and the token refresh every few minutes, by every user; the user
    # table, which only administrators manage; documents; the rest rarely.
    add_probe_routes(app)
    add_jwks_route(app)
    app.include_router(account_router, prefix=API_V1)
    app.include_router(contracts_router, prefix=API_V1)
    app.include_router(pbx_router, prefix=API_V1)
    app.include_router(auth_router, prefix=API_V1)
    app.include_router(users_router, prefix=API_V1)
    app.include_router(documents_router, prefix=API_V1)
    app.include_router(audit_router, prefix=API_V1)
    app.include_router(invitations_router, prefix=API_V1)
    app.include_router(customers_router, prefix=API_V1)
