"""The signed-in user's own profile and password, and the role catalogue."""

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status

from app.auth.account import change_password, update_profile
from app.auth.schemas import PasswordChange, ProfileUpdate, RoleCatalogue, RoleOut
from app.core.auth import CurrentPrincipal, client_ip
from app.core.db import DbSession
from app.core.errors import problem_responses
from app.core.permissions import PERMISSIONS, ROLE_LABELS, Role
from app.core.state import AppState, get_state
from app.users.schemas import UserOut

router = APIRouter(tags=["me"])

State = Annotated[AppState, Depends(get_state)]


@router.get(
    "/me",
    response_model=UserOut,
    summary="The own profile",
    responses=problem_responses(401),
)
async def get_me(principal: CurrentPrincipal) -> UserOut:
    return UserOut.build(principal.user)


@router.patch(
    "/me",
    response_model=UserOut,
    summary="Change the own profile (login ID and e-mail need the current password)",
    responses=problem_responses(401, 403, 409, 422, 429),
)
async def patch_me(
    body: ProfileUpdate,
    principal: CurrentPrincipal,
    request: Request,
    session: DbSession,
    state: State,
) -> UserOut:
    user = await update_profile(state, session, principal, body, client_ip=client_ip(request))
    return UserOut.build(user)


@router.post(
    "/me/password",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Change the own password; the other sessions end",
    responses=problem_responses(401, 403, 422, 429),
)
async def post_password(
    body: PasswordChange,
    principal: CurrentPrincipal,
    request: Request,
    session: DbSession,
    state: State,
) -> Response:
    await change_password(
        state,
        session,
        principal,
        current_password=body.current_password,
        new_password=body.new_password,
        client_ip=client_ip(request),
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/roles",
    response_model=RoleCatalogue,
    summary="The role catalogue, with German and English labels",
    responses=problem_responses(401),
)
async def list_roles(_principal: CurrentPrincipal) -> RoleCatalogue:
    return RoleCatalogue(
        items=[
            RoleOut(role=role, labels=ROLE_LABELS[role], actions=sorted(PERMISSIONS[role]))
            for role in Role
        ]
    )
