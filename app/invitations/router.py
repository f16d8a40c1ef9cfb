"""Password links: inspect a token, set a password with it, request a reset link."""

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from app.core.auth import client_ip
from app.core.db import DbSession
from app.core.errors import problem_responses
from app.core.state import AppState, get_state
from app.invitations import passwords
from app.invitations.schemas import (
    PASSWORD_SET_MESSAGE,
    RESET_REQUESTED_MESSAGE,
    MessageOut,
    PasswordResetIn,
    PasswordSetupIn,
    PasswordSetupOut,
    TokenIn,
    TokenInfoOut,
)

router = APIRouter(tags=["passwords"])
State = Annotated[AppState, Depends(get_state)]


@router.post(
    "/password-tokens/inspect",
    response_model=TokenInfoOut,
    responses=problem_responses(410, 422),
    summary="Check a password link without using it",
)
async def inspect_password_token(body: TokenIn, session: DbSession) -> TokenInfoOut:
    """Purpose, login ID and name behind a link; does not use it up (mail scanners open links)."""
    info = await passwords.inspect_token(session, body.token)
    return TokenInfoOut(
        purpose=info.purpose,
        login=info.login,
        first_name=info.first_name,
        last_name=info.last_name,
        expires_at=info.expires_at,
    )


@router.post(
    "/password-setup",
    response_model=PasswordSetupOut,
    responses=problem_responses(410, 422),
    summary="Set the password with an invitation or reset link",
)
async def set_password(
    body: PasswordSetupIn, session: DbSession, state: State, request: Request
) -> PasswordSetupOut:
    """Set the password once per link; `invited` and `locked` accounts become `active`."""
    user = await passwords.set_password_with_token(
        session,
        state,
        token=body.token,
        password=body.password,
        password_confirmation=body.password_confirmation,
        client_ip=client_ip(request),
    )
    return PasswordSetupOut(message=PASSWORD_SET_MESSAGE, login=user.login)


@router.post(
    "/password-reset",
    status_code=202,
    response_model=MessageOut,
    responses=problem_responses(422),
    summary="Request a link to set a new password",
)
async def request_password_reset(
    body: PasswordResetIn, session: DbSession, state: State, request: Request
) -> MessageOut:
    """Always `202` with the same body, whether the login exists, may reset, or asked too often."""
    await passwords.request_password_reset(
        session, state, login=body.login, client_ip=client_ip(request)
    )
    return MessageOut(message=RESET_REQUESTED_MESSAGE)
