"""Login, token refresh and logout."""

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, Response, status
from pydantic import BaseModel, Field

from app.auth.schemas import LoginName, LoginRequest, RefreshRequest, TokenOut
from app.auth.service import log_in, log_out
from app.auth.sessions import IssuedTokens, refresh_session
from app.core.auth import CurrentPrincipal, client_ip
from app.core.db import DbSession, DbUnit
from app.core.errors import problem_responses
from app.core.state import AppState, get_state, state_of
from app.users.fields import Password
from app.users.models import Account, UserAccount
from app.users.schemas import UserOut

router = APIRouter(tags=["auth"])

State = Annotated[AppState, Depends(get_state)]


class TokenForm(BaseModel):
    """The OAuth2 password grant (RFC 6749 4.3), as Swagger UI and generated clients send it.

    Unknown parameters are ignored here, as RFC 6749 requires of a token endpoint.
    """

    grant_type: str | None = Field(default=None, pattern="^password$")
    username: LoginName
    password: Password
    scope: str = Field(default="", max_length=200)


def _token_response(tokens: IssuedTokens, user: UserAccount | Account) -> Response:
    """The answer of a login or refresh, serialised once (`response_model` documents it)."""
    body = TokenOut(
        access_token=tokens.access_token,
        expires_in=tokens.expires_in,
        refresh_token=tokens.refresh_token,
        user=UserOut.build(user),
    )
    return Response(body.model_dump_json(), media_type="application/json")


async def _log_in(unit: DbUnit, request: Request, login: str, password: str) -> Response:
    # The app's state is read off the request (`state_of`), as on every hot path: one
    # dependency less for FastAPI to solve per login.
    tokens, user = await log_in(
        state_of(request),
        unit,
        login=login,
        password=password,
        client_ip=client_ip(request),
        user_agent=request.headers.get("user-agent"),
    )
    return _token_response(tokens, user)


@router.post(
    "/auth/login",
    response_model=TokenOut,
    summary="Log in with login ID and password",
    responses=problem_responses(401, 422, 429),
)
async def login(body: LoginRequest, request: Request, unit: DbUnit) -> Response:
    return await _log_in(unit, request, body.login, body.password)


@router.post(
    "/auth/token",
    response_model=TokenOut,
    summary="Log in with the OAuth2 password grant (form), for Swagger UI and generated clients",
    responses=problem_responses(401, 422, 429),
)
async def token(form: Annotated[TokenForm, Form()], request: Request, unit: DbUnit) -> Response:
    return await _log_in(unit, request, form.username, form.password)


@router.post(
    "/auth/refresh",
    response_model=TokenOut,
    summary="Exchange the refresh token for a new pair (the old one dies)",
    responses=problem_responses(401, 422),
)
async def refresh(
    body: RefreshRequest, request: Request, session: DbSession, state: State
) -> Response:
    tokens, user = await refresh_session(
        state, session, body.refresh_token, client_ip=client_ip(request)
    )
    return _token_response(tokens, user)


@router.post(
    "/auth/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="End the session; its tokens stop working at once",
    responses=problem_responses(401),
)
async def logout(principal: CurrentPrincipal, request: Request, session: DbSession) -> Response:
    await log_out(session, principal, client_ip=client_ip(request))
    return Response(status_code=status.HTTP_204_NO_CONTENT)
