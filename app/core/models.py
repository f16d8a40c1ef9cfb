"""Every table's model, imported so the metadata is complete (for migrations and mappers)."""

from app.audit.models import AuditEvent
from app.auth.models import AuthSession, LoginThrottle
from app.contracts.models import Contract
from app.core.db import Base
from app.customers.models import Customer
from app.documents.models import Document
from app.invitations.models import Invitation, PasswordToken
from app.outbox.models import OutboxMessage
from app.users.models import UserAccount

metadata = Base.metadata

__all__ = [
    "AuditEvent",
    "AuthSession",
    "Contract",
    "Customer",
    "Document",
    "Invitation",
    "LoginThrottle",
    "OutboxMessage",
    "PasswordToken",
    "UserAccount",
    "metadata",
]
