"""User management of a customer's portal admin (the "Benutzerverwaltung Kundenportal")."""

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response, status

from app.core.auth import PortalAdmin, client_ip
from app.core.db import Db, DbSession
from app.core.errors import problem_responses
from app.core.state import AppState, get_state
from app.users import lifecycle, service
from app.users.listing import UserListQuery, list_page
from app.users.repository import UserRow
from app.users.schemas import UserCreate, UserOut, UserPage, UserUpdate
from app.users.service import AdminContext, etag_of

router = APIRouter(prefix="/users", tags=["users"])

State = Annotated[AppState, Depends(get_state)]
UserId = Annotated[int, Path(ge=1, le=2**31 - 1, description="The user ID (Benutzer ID).")]
IfMatch = Annotated[
    str | None,
    Header(
        max_length=200,
        description="The ETag of the version you saw; 412 if the user changed meanwhile.",
    ),
]
_AUTH = (401, 403)
_ONE = problem_responses(*_AUTH, 404, 422)
_CHANGE = problem_responses(*_AUTH, 404, 409, 412, 422)
# 400: a body that is not JSON at all.
_CHANGE_WITH_BODY = problem_responses(400, *_AUTH, 404, 409, 412, 422)


async def admin_context(principal: PortalAdmin, request: Request) -> AdminContext:
    return AdminContext(principal=principal, client_ip=client_ip(request))


Admin = Annotated[AdminContext, Depends(admin_context)]


def _user(row: UserRow, response: Response) -> UserOut:
    response.headers["ETag"] = etag_of(row["version"])
    response.headers["Cache-Control"] = "no-store"
    return UserOut.of_row(row)


@router.get("", response_model=UserPage, responses=problem_responses(*_AUTH, 400, 422))
async def list_users(
    database: Db, principal: PortalAdmin, query: Annotated[UserListQuery, Query()]
) -> Response:
    """The customer's users, a page at a time (keyset pagination: follow `next_cursor`)."""
    page = await list_page(database, principal.customer_id, query)
    return Response(page, media_type="application/json")


@router.post(
    "", status_code=status.HTTP_201_CREATED, responses=problem_responses(400, *_AUTH, 409, 422)
)
async def create_user(
    session: DbSession,
    state: State,
    ctx: Admin,
    body: UserCreate,
    request: Request,
    response: Response,
) -> UserOut:
    """Create a user account and send (or schedule) its invitation."""
    row = await service.create_user(session, state.settings, ctx, body)
    response.headers["Location"] = request.url_for("get_user", user_id=row["id"]).path
    return _user(row, response)


@router.get("/{user_id}", responses=_ONE)
async def get_user(session: DbSession, ctx: Admin, user_id: UserId, response: Response) -> UserOut:
    """One user, with its version as `ETag`."""
    return _user(await service.get_user(session, ctx, user_id), response)


@router.patch("/{user_id}", responses=_CHANGE_WITH_BODY)
async def update_user(
    session: DbSession,
    ctx: Admin,
    user_id: UserId,
    body: UserUpdate,
    response: Response,
    if_match: IfMatch = None,
) -> UserOut:
    """Change names, e-mail, phone, mobile, language, role or `expires_at`."""
    return _user(await service.update_user(session, ctx, user_id, body, if_match), response)


@router.delete("/{user_id}", status_code=status.HTTP_204_NO_CONTENT, responses=_CHANGE)
async def delete_user(
    session: DbSession, ctx: Admin, user_id: UserId, if_match: IfMatch = None
) -> None:
    """Delete the account; its sessions end at once."""
    await service.delete_user(session, ctx, user_id, if_match)


@router.post("/{user_id}/disable", responses=_CHANGE)
async def disable_user(
    session: DbSession, ctx: Admin, user_id: UserId, response: Response, if_match: IfMatch = None
) -> UserOut:
    """Disable the account (from any status but `disabled`); its sessions end at once."""
    return _user(await lifecycle.disable_user(session, ctx, user_id, if_match), response)


@router.post("/{user_id}/enable", responses=_CHANGE)
async def enable_user(
    session: DbSession,
    state: State,
    ctx: Admin,
    user_id: UserId,
    response: Response,
    if_match: IfMatch = None,
) -> UserOut:
    """Enable a disabled or expired account: `active`, or `invited` with a new invitation."""
    row = await lifecycle.enable_user(session, state.settings, ctx, user_id, if_match)
    return _user(row, response)


@router.post("/{user_id}/unlock", responses=_CHANGE)
async def unlock_user(
    session: DbSession, ctx: Admin, user_id: UserId, response: Response, if_match: IfMatch = None
) -> UserOut:
    """Unlock a locked account (`locked` -> `active`)."""
    return _user(await lifecycle.unlock_user(session, ctx, user_id, if_match), response)


@router.post(
    "/{user_id}/invitation",
    status_code=status.HTTP_202_ACCEPTED,
    responses=problem_responses(*_AUTH, 404, 409, 422, 429),
)
async def resend_invitation(
    session: DbSession, state: State, ctx: Admin, user_id: UserId, response: Response
) -> UserOut:
    """Send a new invitation link now; older links stop working. Rate-limited per account."""
    row = await lifecycle.resend_invitation(session, state.settings, ctx, user_id)
    return _user(row, response)
