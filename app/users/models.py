"""User accounts of the portal: one person of a customer, with one role and a status."""

from dataclasses import dataclass, fields
from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from app.core.clock import utcnow
from app.core.db import Base, UTCDateTime
from app.core.password_policy import check_new_password, context_words_for
from app.core.permissions import Role
from app.core.types import str_enum
from app.customers.models import Customer
from app.users.status import UserStatus


class Language(StrEnum):
    """Language of the portal and of the mails a user receives."""

    DE = "de"
    EN = "en"


class UserAccount(Base):
    """A person's access to the portal; `login_key` makes logins unique case-insensitively."""

    __tablename__ = "user_accounts"
    __table_args__ = (
        Index("ix_user_accounts_customer_login", "customer_id", "login_key"),
        Index("ix_user_accounts_customer_last_name", "customer_id", "last_name", "id"),
        Index("ix_user_accounts_customer_created", "customer_id", "created_at", "id"),
        Index("ix_user_accounts_customer_status", "customer_id", "status", "id"),
        Index("ix_user_accounts_expires_at", "expires_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    login: Mapped[str] = mapped_column(String(64))
    login_key: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[Role] = mapped_column(str_enum(Role))
    status: Mapped[UserStatus] = mapped_column(str_enum(UserStatus, length=16))
    first_name: Mapped[str] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100))
    email: Mapped[str] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(32))
    mobile: Mapped[str | None] = mapped_column(String(32))
    language: Mapped[Language] = mapped_column(str_enum(Language, length=8), default=Language.DE)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    password_set_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Sessions that authenticated before this moment are over (disable, lock, password set).
    sessions_valid_from: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    version: Mapped[int] = mapped_column(default=1)

    customer: Mapped[Customer] = relationship(lazy="raise")

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012

    @staticmethod
    def key_for(login: str) -> str:
        """The case-insensitive form under which a login ID is unique system-wide."""
        return login.casefold()

    @validates("login")
    def _keep_login_key(self, _key: str, login: str) -> str:
        """Every assignment of a login ID also sets the key its uniqueness is enforced on."""
        self.login_key = self.key_for(login)
        return login

    def check_new_password(self, password: str, *, brand: str, field: str = "password") -> None:
        """The password policy, with this account's login, names and e-mail as context."""
        check_new_password(
            password,
            context_words_for(
                login=self.login,
                first_name=self.first_name,
                last_name=self.last_name,
                email=self.email,
                brand=brand,
            ),
            field=field,
        )

    def end_sessions(self, now: datetime) -> None:
        """End every session of this account at once (checked by every request)."""
        self.sessions_valid_from = now

    @property
    def display_name(self) -> str:
        return f"{self.first_name} {self.last_name}"


@dataclass(frozen=True, slots=True)
class Account:
    """A read-only copy of an account's row, as the request's principal carries it.

    Requests that only need to know who is calling read this copy, which may come from the
    process's cache of signed-in sessions; a request that changes the account loads the row.
    """

    id: int
    customer_id: int
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

    @classmethod
    def of(cls, user: UserAccount) -> "Account":
        return cls(**{name: getattr(user, name) for name in ACCOUNT_FIELDS})

    @property
    def display_name(self) -> str:
        return f"{self.first_name} {self.last_name}"


ACCOUNT_FIELDS = tuple(field.name for field in fields(Account))
