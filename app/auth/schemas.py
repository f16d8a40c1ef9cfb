"""Requests and answers of login, refresh and the own account."""

from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from app.core.permissions import Action, Role
from app.users.fields import Email, LoginId, Password, PersonName, PhoneNumber
from app.users.fields import reject_control_characters as _no_control
from app.users.models import Language
from app.users.schemas import UserOut

# What a login form may carry: any string a user might type, so an unknown login ID of the
# wrong shape is refused like any other unknown one (401), not with a different answer.
LoginName = Annotated[
    str, StringConstraints(min_length=1, max_length=64), AfterValidator(_no_control)
]
RefreshToken = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class LoginRequest(BaseModel):
    """Login ID and password."""

    model_config = ConfigDict(extra="forbid")

    login: LoginName = Field(examples=["customer2300229"])
    password: Password


class RefreshRequest(BaseModel):
    """The refresh token of the last login or refresh."""

    model_config = ConfigDict(extra="forbid")

    refresh_token: RefreshToken


class TokenOut(BaseModel):
    """A new access token and the refresh token that replaces the previous one."""

    access_token: str
    token_type: str = Field(default="bearer", examples=["bearer"])
    expires_in: int = Field(description="Seconds until the access token expires")
    refresh_token: str
    user: UserOut


class ProfileUpdate(BaseModel):
    """Changes to the own profile; login ID and e-mail only with `current_password`."""

    model_config = ConfigDict(extra="forbid")

    first_name: PersonName | None = None
    last_name: PersonName | None = None
    phone: PhoneNumber | None = None
    mobile: PhoneNumber | None = None
    language: Language | None = None
    login: LoginId | None = None
    email: Email | None = None
    current_password: Password | None = None

    @model_validator(mode="after")
    def _required_fields_not_null(self) -> "ProfileUpdate":
        # phone and mobile may be cleared with null; the others always have a value.
        for name in ("first_name", "last_name", "language", "login", "email"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


class PasswordChange(BaseModel):
    """The current password, and the new one (15-128 characters, not a common one)."""

    model_config = ConfigDict(extra="forbid")

    current_password: Password
    new_password: Password


class RoleOut(BaseModel):
    """One role of the catalogue, with its labels and what it may do."""

    role: Role
    labels: dict[str, str] = Field(examples=[{"de": "Administrator Telefonanlage"}])
    actions: list[Action]


class RoleCatalogue(BaseModel):
    """Every role a user account can have."""

    items: list[RoleOut]
