"""Customers and their e:service activation: the letter's code, the first portal admin."""

import hashlib
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import Actor, record_event
from app.auth.ratelimit import attempts_in_window, count_attempt
from app.core.clock import utcnow
from app.core.config import Settings
from app.core.errors import RateLimited
from app.core.permissions import Role
from app.customers import repository
from app.customers.errors import ActivationInvalid
from app.customers.models import Customer, EServiceState
from app.customers.repository import consume_activation_code
from app.invitations.service import send_invitation
from app.users import errors as user_errors  # noqa: F401 - registers login_taken (409)
from app.users import repository as users
from app.users.models import Language, UserAccount
from app.users.status import INITIAL_INVITED

# No 0/O, 1/I/L: the code is typed from a paper letter. 16 of 31 symbols: 79 bits.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 16
REGISTRATION_WINDOW = timedelta(hours=1)


def new_activation_code() -> str:
    """A code for the letter, in groups of four: `ABCD-EFGH-JKMN-PQRS`."""
    raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    return "-".join(raw[i : i + 4] for i in range(0, CODE_LENGTH, 4))


def hash_activation_code(code: str) -> str:
    """SHA-256 of the code as typed, ignoring case, spaces and dashes."""
    folded = unicodedata.normalize("NFKC", code).upper()
    canonical = "".join(char for char in folded if char.isalnum())
    return hashlib.sha256(canonical.encode()).hexdigest()


async def create_customer(
    session: AsyncSession, *, customer_number: str, name: str
) -> tuple[Customer, str]:
    """A new customer, e:service `pending`, and the activation code for its letter."""
    code = new_activation_code()
    now = utcnow()
    customer = Customer(
        customer_number=customer_number,
        name=name,
        eservice_state=EServiceState.PENDING,
        activation_code_hash=hash_activation_code(code),
        created_at=now,
        updated_at=now,
    )
    await repository.add_customer(session, customer)
    await record_event(
        session,
        "customer.created",
        customer_id=customer.id,
        target_type="customer",
        target_id=customer.id,
    )
    return customer, code


@dataclass(frozen=True)
class NewAccount:
    """Who is invited: the person and the login ID chosen for him."""

    login: str
    first_name: str
    last_name: str
    email: str
    role: Role = Role.CUSTOMER_PORTAL_ADMIN
    phone: str | None = None
    language: Language = Language.DE


async def invite_account(
    session: AsyncSession,
    settings: Settings,
    customer_id: int,
    account: NewAccount,
    *,
    actor: Actor | None = None,
    client_ip: str | None = None,
) -> UserAccount:
    """Create an `invited` account and queue its invitation (a taken login: 409 at flush)."""
    now = utcnow()
    user = UserAccount(
        customer_id=customer_id,
        login=account.login,
        role=account.role,
        status=INITIAL_INVITED,
        first_name=account.first_name,
        last_name=account.last_name,
        email=account.email,
        phone=account.phone,
        language=account.language,
        created_at=now,
        updated_at=now,
    )
    await users.add_user(session, user)
    await record_event(
        session,
        "user.created",
        customer_id=customer_id,
        actor=actor,
        target_type="user",
        target_id=user.id,
        client_ip=client_ip,
        details={"login": user.login, "role": str(user.role), "status": str(user.status)},
    )
    await send_invitation(session, settings, user, actor=actor, client_ip=client_ip)
    return user


async def register_first_admin(
    session: AsyncSession,
    settings: Settings,
    *,
    customer_number: str,
    activation_code: str,
    account: NewAccount,
    client_ip: str | None,
) -> UserAccount:
    """e:service activation with the letter: the code is used up, the admin is invited.

    A wrong number and a wrong (or used) code answer alike. Failures are counted per client
    IP; beyond the limit every attempt answers 429, so the code cannot be guessed.
    """
    ip_key = f"registration:ip:{client_ip or '-'}"
    limit = settings.registration_failures_per_ip_per_hour
    if await attempts_in_window(session, ip_key, window=REGISTRATION_WINDOW) >= limit:
        raise RateLimited(int(REGISTRATION_WINDOW.total_seconds()), "Too many failed attempts.")
    customer_id = await consume_activation_code(
        session, customer_number.strip(), hash_activation_code(activation_code)
    )
    if customer_id is None:
        await count_attempt(session, ip_key, window=REGISTRATION_WINDOW)
        await record_event(
            session,
            "registration.failed",
            customer_id=None,
            client_ip=client_ip,
        )
        raise ActivationInvalid(
            "The customer number or the activation code is wrong.", keep_changes=True
        )
    user = await invite_account(
        session,
        settings,
        customer_id,
        account,
        actor=Actor(None, "registration"),
        client_ip=client_ip,
    )
    await record_event(
        session,
        "customer.registered",
        customer_id=customer_id,
        actor=Actor(None, "registration"),
        target_type="customer",
        target_id=customer_id,
        client_ip=client_ip,
        details={"admin_login": user.login},
    )
    return user
