"""Who is calling: dependencies that routers declare to get the signed-in user and check roles.

The token and session check itself belongs to the auth feature; create_app() hands it in as
`AppState.authenticate`, so core depends on no feature.
"""

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer

from app.core.errors import Forbidden, Unauthenticated
from app.core.permissions import Action, Role, is_allowed
from app.core.state import state_of

if TYPE_CHECKING:
    from app.users.models import Account

# The OAuth2 password flow in the OpenAPI document, so Swagger UI's "Authorize" logs in.
_bearer = OAuth2PasswordBearer(
    tokenUrl="/api/v1/auth/token",
    auto_error=False,
    description="An access token from /api/v1/auth/login or /api/v1/auth/token",
)


@dataclass(frozen=True)
class Principal:
    """The signed-in user of this request, and the session its token belongs to.

    `user` is a read-only copy of the account (it may come from the cache of signed-in
    sessions); a request that changes the account loads its row.
    """

    user: "Account"
    session_id: str

    @property
    def user_id(self) -> int:
        return self.user.id

    @property
    def customer_id(self) -> int:
        return self.user.customer_id

    @property
    def role(self) -> Role:
        return self.user.role


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


async def _authenticated(request: Request, access_token: str | None) -> Principal:
    if not access_token:
        raise Unauthenticated("A bearer access token is required.")
    principal: Principal = await state_of(request).authenticate(access_token)
    return principal


# The dependencies below take the request and the token themselves rather than through
# further dependencies (the app's state, the principal): FastAPI resolves each dependency of
# each request anew, and on the hot paths that resolution costs more than the check itself.


async def current_principal(
    request: Request, access_token: Annotated[str | None, Depends(_bearer)]
) -> Principal:
    """The caller, if the token is genuine, its session alive and its account may log in."""
    return await _authenticated(request, access_token)


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def require(action: Action) -> object:
    """A dependency that lets the request through only if the caller's role may `action`."""

    async def check(
        request: Request, access_token: Annotated[str | None, Depends(_bearer)]
    ) -> Principal:
        principal = await _authenticated(request, access_token)
        if not is_allowed(principal.role, action):
            raise Forbidden("Your role does not allow this.")
        return principal

    return Depends(check)


PortalAdmin = Annotated[Principal, require(Action.MANAGE_USERS)]
AuditReader = Annotated[Principal, require(Action.READ_AUDIT)]
ContractReader = Annotated[Principal, require(Action.READ_CONTRACTS)]
PbxOpener = Annotated[Principal, require(Action.OPEN_PBX)]
DocumentReader = Annotated[Principal, require(Action.READ_DOCUMENTS)]
