"""Customers: the provider's business customers and their e:service activation."""

from datetime import datetime
from enum import StrEnum

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.clock import utcnow
from app.core.db import Base, UTCDateTime
from app.core.types import str_enum


class EServiceState(StrEnum):
    """A customer's portal access: pending until its first portal admin sets a password."""

    PENDING = "pending"
    ACTIVE = "active"


class Customer(Base):
    """A business customer of the provider, identified by its customer number."""

    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_number: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    eservice_state: Mapped[EServiceState] = mapped_column(
        str_enum(EServiceState), default=EServiceState.PENDING
    )
    # SHA-256 of the activation code printed in the letter; cleared once used.
    activation_code_hash: Mapped[str | None] = mapped_column(String(64))
    activated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
