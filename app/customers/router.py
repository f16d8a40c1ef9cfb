"""e:service activation: the customer registers its first portal administrator."""

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from app.core.auth import client_ip
from app.core.db import DbSession
from app.core.errors import problem_responses
from app.core.state import AppState, get_state
from app.customers.schemas import REGISTRATION_MESSAGE, RegistrationIn, RegistrationOut
from app.customers.service import NewAccount, register_first_admin

router = APIRouter(tags=["registration"])


@router.post(
    "/registrations",
    status_code=202,
    response_model=RegistrationOut,
    responses=problem_responses(400, 409, 422, 429),
    summary="Activate e:service with the customer number and the letter's activation code",
)
async def register(
    body: RegistrationIn,
    session: DbSession,
    state: Annotated[AppState, Depends(get_state)],
    request: Request,
) -> RegistrationOut:
    """Creates the first portal administrator (`invited`) and mails the invitation link."""
    user = await register_first_admin(
        session,
        state.settings,
        customer_number=body.customer_number,
        activation_code=body.activation_code,
        account=NewAccount(
            login=body.login,
            first_name=body.first_name,
            last_name=body.last_name,
            email=str(body.email),
            phone=body.phone,
        ),
        client_ip=client_ip(request),
    )
    return RegistrationOut(message=REGISTRATION_MESSAGE, login=user.login)
