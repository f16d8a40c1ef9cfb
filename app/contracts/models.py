"""Contracts of a customer, such as a cloud.phone PBX."""

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.core.clock import utcnow
from app.core.db import Base, UTCDateTime
from app.core.types import str_enum
from app.customers.models import Customer


class ContractState(StrEnum):
    ACTIVE = "active"
    TERMINATED = "terminated"


class Contract(Base):
    """A product contract ("Vertrags-ID"); a cloud.phone contract maps to one PBX tenant."""

    __tablename__ = "contracts"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    contract_number: Mapped[str] = mapped_column(String(32), unique=True)
    product: Mapped[str] = mapped_column(String(32), default="cloud.phone")
    label: Mapped[str | None] = mapped_column(String(200))
    state: Mapped[ContractState] = mapped_column(
        str_enum(ContractState, length=16), default=ContractState.ACTIVE
    )
    pbx_tenant: Mapped[str | None] = mapped_column(String(100))
    # Overrides ESERVICE_PBX_UI_URL for this contract; set only by the operator.
    pbx_ui_url: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    customer: Mapped[Customer] = relationship(lazy="raise")
