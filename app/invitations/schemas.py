"""Request and response bodies of the password-token endpoints."""

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from app.invitations.models import TokenPurpose
from app.users.fields import Password, reject_control_characters

# The mailed tokens have 43 characters; anything up to 256 is looked up (and not found).
Token = Annotated[
    str,
    StringConstraints(min_length=1, max_length=256),
    Field(description="The token from the link's fragment (`#token=...`)"),
]
# Any text a person might type into the login field; unknown ones get the same answer.
LoginInput = Annotated[
    str,
    StringConstraints(min_length=1, max_length=254),
    AfterValidator(reject_control_characters),
    Field(examples=["Admin.Telefonanlage1"]),
]

PASSWORD_SET_MESSAGE = "Ihr Kennwort wurde festgelegt."  # noqa: S105 - a message
RESET_REQUESTED_MESSAGE = (
    "Wenn ein Zugang mit dieser Login-ID besteht, haben wir eine E-Mail mit einem Link "
    "zum Festlegen des Kennworts an die hinterlegte Adresse geschickt."
)


class TokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: Token


class TokenInfoOut(BaseModel):
    """Whose link this is and until when it works; the page greets the person with it."""

    purpose: TokenPurpose
    login: str
    first_name: str
    last_name: str
    expires_at: datetime


class PasswordSetupIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: Token
    password: Password
    password_confirmation: Password


class PasswordSetupOut(BaseModel):
    message: str = Field(examples=[PASSWORD_SET_MESSAGE])
    login: str


class PasswordResetIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    login: LoginInput


class MessageOut(BaseModel):
    """An acknowledgement that says nothing about who exists."""

    message: str
