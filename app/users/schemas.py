"""The user representation shared by /me, login answers and user management."""

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from app.core.permissions import Role
from app.outbox.models import DeliveryState
from app.users.fields import Email, LoginId, PersonName, PhoneNumber, UtcDatetime
from app.users.models import Account, Language, UserAccount
from app.users.repository import UserRow
from app.users.status import UserStatus


class InvitationOut(BaseModel):
    """The invitation dispatch as the user table shows it, for the admin's resend decision."""

    delivery: DeliveryState | None
    scheduled_for: datetime | None
    sent_at: datetime | None
    sent_count: int
    expires_at: datetime | None
    expired: bool


class UserOut(BaseModel):
    """A user account as the API shows it (never its password hash)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    login: str
    role: Role
    status: UserStatus
    first_name: str
    last_name: str
    email: str
    phone: str | None
    mobile: str | None
    language: Language
    expires_at: datetime | None
    last_login_at: datetime | None
    created_at: datetime
    updated_at: datetime
    version: int
    invitation: InvitationOut | None

    @classmethod
    def build(cls, user: UserAccount | Account) -> "UserOut":
        """An account without its invitation block: the caller's profile, a login answer."""
        # Every field but the invitation block is the account's column of the same name.
        columns = {name: getattr(user, name) for name in cls.model_fields if name != "invitation"}
        return cls(**columns, invitation=None)

    @classmethod
    def of_row(cls, row: UserRow) -> "UserOut":
        """A user of user management, with its invitation block (see `UserRow`)."""
        return cls.model_validate(row)


class UserCreate(BaseModel):
    """A new user account of the admin's customer; the invitation goes out now or as planned."""

    model_config = ConfigDict(extra="forbid")

    login: LoginId
    role: Role
    first_name: PersonName
    last_name: PersonName
    email: Email
    phone: PhoneNumber | None = None
    mobile: PhoneNumber | None = None
    language: Language = Language.DE
    expires_at: UtcDatetime | None = Field(
        default=None, description="Planned until: access ends at this moment."
    )
    send_invitation_at: UtcDatetime | None = Field(
        default=None,
        description="Send the invitation later; the account stays `scheduled` until then.",
    )


class UserUpdate(BaseModel):
    """Changes of an account; fields left out stay, `null` clears phone, mobile, expires_at."""

    model_config = ConfigDict(extra="forbid")

    first_name: PersonName | None = None
    last_name: PersonName | None = None
    email: Email | None = None
    phone: PhoneNumber | None = None
    mobile: PhoneNumber | None = None
    language: Language | None = None
    role: Role | None = None
    expires_at: UtcDatetime | None = None


class UserPage(BaseModel):
    """One page of the user table; `next_cursor` is null on the last page."""

    items: list[UserOut]
    next_cursor: str | None
    total: int | None = Field(
        default=None, description="Exact number of matching users, only with include_total=true."
    )
