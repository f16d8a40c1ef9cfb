"""`eservice demo`: the provider's guide as data, so a newcomer sees every step after `make run`.

Idempotent: it looks everything up by its natural key (customer number, login, contract
number) and creates only what is missing. Each run sets the demo administrator's password
(the given one, or a newly generated one it prints), so `make run` always shows a login
that works.
"""

import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import record_event
from app.auth.throttle import clear_login_failures
from app.contracts import repository as contracts
from app.contracts.models import Contract, ContractState
from app.core.clock import utcnow
from app.core.commands import CommandError
from app.core.config import Settings
from app.core.password_policy import context_words_for, password_problem
from app.core.permissions import Role
from app.core.security import PasswordHasher
from app.customers.models import Customer, EServiceState
from app.customers.repository import add_customer, find_customer_by_number
from app.documents.demo import add_demo_documents
from app.invitations.repository import find_user_by_login
from app.invitations.service import send_invitation
from app.users.models import Language, UserAccount
from app.users.repository import add_user
from app.users.status import StatusEvent, UserStatus, allowed, apply_event

CUSTOMER_NUMBER = "2300229"
CUSTOMER_NAME = "Muster GmbH"
ADMIN_LOGIN = "customer2300229"
INVITED_LOGIN = "Admin.Telefonanlage1"
CONTRACT_NUMBER = "2300229-CP1"


@dataclass(frozen=True)
class DemoPerson:
    login: str
    role: Role
    first_name: str
    last_name: str
    email: str


ADMIN = DemoPerson(
    ADMIN_LOGIN, Role.CUSTOMER_PORTAL_ADMIN, "Max", "Muster", "max.muster@muster.example"
)
INVITED = DemoPerson(
    INVITED_LOGIN, Role.PBX_ADMIN, "Paula", "Beispiel", "paula.beispiel@muster.example"
)


@dataclass(frozen=True)
class DemoData:
    """What the command prints: who can log in, and what was new this time."""

    customer_number: str
    admin_login: str
    admin_password: str
    invited_login: str
    contract_number: str
    created: list[str]


def demo_password(password: str | None, settings: Settings) -> str:
    """The given password if the policy accepts it for the demo admin, or a generated one."""
    if password is None:
        return secrets.token_urlsafe(15)  # 20 characters, 120 bits
    words = context_words_for(
        login=ADMIN.login,
        first_name=ADMIN.first_name,
        last_name=ADMIN.last_name,
        email=ADMIN.email,
        brand=settings.brand_name,
    )
    problem = password_problem(password, words)
    if problem is not None:
        raise CommandError(f"--password: {problem}")
    return password


async def _customer(session: AsyncSession, created: list[str]) -> Customer:
    # The customer is active once its first portal admin has a password (set below).
    customer = await find_customer_by_number(session, CUSTOMER_NUMBER)
    if customer is None:
        customer = Customer(
            customer_number=CUSTOMER_NUMBER,
            name=CUSTOMER_NAME,
            eservice_state=EServiceState.ACTIVE,
            activated_at=utcnow(),
        )
        created.append(f"customer {CUSTOMER_NUMBER}")
        return await add_customer(session, customer)
    if customer.eservice_state != EServiceState.ACTIVE:
        customer.eservice_state = EServiceState.ACTIVE
        customer.activated_at = utcnow()
        await session.flush()
    return customer


async def _user(
    session: AsyncSession, customer: Customer, person: DemoPerson, status: UserStatus
) -> tuple[UserAccount, bool]:
    user = await find_user_by_login(session, person.login)
    if user is not None:
        if user.customer_id != customer.id:
            raise CommandError(f"login {person.login} belongs to another customer")
        return user, False
    user = await add_user(
        session,
        UserAccount(
            customer_id=customer.id,
            login=person.login,
            role=person.role,
            status=status,
            first_name=person.first_name,
            last_name=person.last_name,
            email=person.email,
            language=Language.DE,
        ),
    )
    await record_event(
        session,
        "user.created",
        customer_id=customer.id,
        target_type="user",
        target_id=user.id,
        details={"source": "demo", "role": str(person.role)},
    )
    return user, True


async def _contract(session: AsyncSession, customer: Customer, created: list[str]) -> Contract:
    contract = await contracts.find_by_number(session, CONTRACT_NUMBER)
    if contract is None:
        contract = await contracts.add(
            session,
            Contract(
                customer_id=customer.id,
                contract_number=CONTRACT_NUMBER,
                product="cloud.phone",
                label="Cloud-Telefonanlage Zentrale",
                state=ContractState.ACTIVE,
                pbx_tenant="muster-gmbh",
            ),
        )
        created.append(f"contract {CONTRACT_NUMBER}")
    return contract


_USABLE_AGAIN = {StatusEvent.UNLOCK: "user.unlocked", StatusEvent.ENABLE: "user.enabled"}


async def _make_usable(
    session: AsyncSession, customer: Customer, admin: UserAccount, now: datetime
) -> None:
    """A demo admin who was locked, disabled or expired meanwhile may log in again, through
    the state machine's own events: the demo's promise is that its login works."""
    admin.expires_at = None
    await clear_login_failures(session, admin.login_key)
    for event, action in _USABLE_AGAIN.items():
        if allowed(admin.status, event):
            transition = apply_event(admin, event, now)
            await session.flush()
            await record_event(
                session,
                action,
                customer_id=customer.id,
                target_type="user",
                target_id=admin.id,
                details={"source": "demo", "from": transition.before, "to": transition.after},
            )


async def load_demo(
    session: AsyncSession, settings: Settings, hasher: PasswordHasher, password: str
) -> DemoData:
    """Create what is missing of the demo customer; set the demo admin's password."""
    created: list[str] = []
    customer = await _customer(session, created)

    admin, is_new = await _user(session, customer, ADMIN, UserStatus.ACTIVE)
    if is_new:
        created.append(f"portal admin {ADMIN.login}")
    now = utcnow()
    admin.password_hash = await hasher.hash(password)
    admin.password_set_at = now
    if not is_new:
        admin.end_sessions(now)  # as every password change does
        await _make_usable(session, customer, admin, now)

    invited, is_new = await _user(session, customer, INVITED, UserStatus.INVITED)
    if is_new:
        # The invitation mail goes to the outbox; the dispatcher delivers it (var/mail/).
        await send_invitation(session, settings, invited)
        created.append(f"invited PBX admin {INVITED.login}")

    contract = await _contract(session, customer, created)

    documents = await add_demo_documents(session, settings)
    created.extend(f"document {document.title!r}" for document in documents)

    await session.flush()
    return DemoData(
        customer_number=customer.customer_number,
        admin_login=admin.login,
        admin_password=password,
        invited_login=invited.login,
        contract_number=contract.contract_number,
        created=created,
    )
