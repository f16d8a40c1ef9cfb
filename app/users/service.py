"""User management by a customer's portal admin: create, read, change, delete.

Status changes (disable, enable, unlock, resend) live in `lifecycle.py`; both go through the
state machine in `status.py` and record an audit event for every change.
"""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import Actor, record_event
from app.core.auth import Principal
from app.core.clock import utcnow
from app.core.config import Settings
from app.core.errors import FieldError, NotFound, PreconditionFailed, ValidationFailed
from app.core.permissions import Role
from app.customers.models import EServiceState
from app.invitations.mail import void_links
from app.invitations.service import send_invitation
from app.users import repository
from app.users.errors import LastAdmin, PendingCustomer, SelfChange
from app.users.models import UserAccount
from app.users.repository import UserRow
from app.users.schemas import UserCreate, UserUpdate
from app.users.status import INITIAL_INVITED, INITIAL_SCHEDULED, UserStatus


@dataclass(frozen=True)
class AdminContext:
    """The portal admin acting in this request, and from where (for the audit log)."""

    principal: Principal
    client_ip: str | None

    @property
    def customer_id(self) -> int:
        return self.principal.customer_id

    @property
    def actor(self) -> Actor:
        return Actor(self.principal.user_id, self.principal.user.login)

    async def record(
        self, session: AsyncSession, action: str, user: UserAccount, **details: object
    ) -> None:
        await record_event(
            session,
            action,
            customer_id=user.customer_id,
            actor=self.actor,
            target_type="user",
            target_id=user.id,
            client_ip=self.client_ip,
            details=dict(details),
        )


def etag_of(version: int) -> str:
    return f'"{version}"'


def check_if_match(user: UserAccount, if_match: str | None) -> None:
    """412 unless `If-Match` (when sent) names the current version (or is `*`).

    The comparison is strong (RFC 9110, 13.1.1): a weak tag (`W/"3"`) never matches, since
    it does not promise the exact version the change was made against.
    """
    if if_match is None:
        return
    tags = {tag.strip() for tag in if_match.split(",")}
    if "*" not in tags and etag_of(user.version) not in tags:
        raise PreconditionFailed("The user was changed meanwhile; reload it and try again.")


def _in_future(moment: datetime | None, field: str, now: datetime) -> None:
    if moment is not None and moment <= now:
        raise ValidationFailed(
            f"{field} must lie in the future.",
            errors=[FieldError(loc=["body", field], msg="must lie in the future", type="value")],
        )


async def load_user(
    session: AsyncSession, ctx: AdminContext, user_id: int, if_match: str | None = None
) -> UserAccount:
    """The admin's own customer's user; any other id is 404, whoever it belongs to."""
    user = await repository.get_user(session, ctx.customer_id, user_id)
    if user is None:
        raise NotFound(f"There is no user {user_id}.")
    check_if_match(user, if_match)
    return user


async def ensure_customer_may_invite(session: AsyncSession, customer_id: int) -> None:
    """Until e:service is activated, only the operator's first admin is invited."""
    customer = await repository.get_customer(session, customer_id)
    if customer is None or customer.eservice_state == EServiceState.PENDING:
        raise PendingCustomer(
            "Invitations are possible once the first portal administrator set a password."
        )


def ensure_not_self(ctx: AdminContext, user: UserAccount, what: str) -> None:
    if user.id == ctx.principal.user_id:
        raise SelfChange(f"You cannot {what} your own account.")


async def ensure_not_last_admin(session: AsyncSession, user: UserAccount) -> None:
    """Refuse to take away the customer's last active portal admin (rows locked meanwhile)."""
    if user.role != Role.CUSTOMER_PORTAL_ADMIN or user.status != UserStatus.ACTIVE:
        return
    admin_ids = await repository.lock_active_admin_ids(session, user.customer_id)
    if not [admin_id for admin_id in admin_ids if admin_id != user.id]:
        raise LastAdmin("The customer needs at least one other active portal administrator.")


async def get_user(session: AsyncSession, ctx: AdminContext, user_id: int) -> UserRow:
    user = await load_user(session, ctx, user_id)
    return await repository.get_user_row(session, user.id)


async def create_user(
    session: AsyncSession, settings: Settings, ctx: AdminContext, body: UserCreate
) -> UserRow:
    """Create the account and invite now, or schedule the invitation; one transaction."""
    await ensure_customer_may_invite(session, ctx.customer_id)
    now = utcnow()
    _in_future(body.expires_at, "expires_at", now)
    send_at = body.send_invitation_at
    scheduled = send_at is not None and send_at > now
    if send_at is not None and body.expires_at is not None and send_at >= body.expires_at:
        raise ValidationFailed(
            "The invitation would be sent after the access ends.",
            errors=[
                FieldError(
                    loc=["body", "send_invitation_at"],
                    msg="must lie before expires_at",
                    type="value",
                )
            ],
        )
    user = await repository.add_user(
        session,
        UserAccount(
            customer_id=ctx.customer_id,
            login=body.login,
            role=body.role,
            status=INITIAL_SCHEDULED if scheduled else INITIAL_INVITED,
            first_name=body.first_name,
            last_name=body.last_name,
            email=str(body.email),
            phone=body.phone,
            mobile=body.mobile,
            language=body.language,
            expires_at=body.expires_at,
            created_at=now,
            updated_at=now,
        ),
    )
    await ctx.record(
        session, "user.created", user, login=user.login, role=user.role, status=user.status
    )
    if scheduled and send_at is not None:
        await repository.add_scheduled_invitation(session, user.id, send_at)
        await ctx.record(session, "invitation.scheduled", user, scheduled_for=send_at.isoformat())
    else:
        await send_invitation(session, settings, user, actor=ctx.actor, client_ip=ctx.client_ip)
    return await repository.get_user_row(session, user.id)


async def update_user(
    session: AsyncSession,
    ctx: AdminContext,
    user_id: int,
    body: UserUpdate,
    if_match: str | None,
) -> UserRow:
    """Change names, contact data, language, role or planned end (`If-Match` honoured)."""
    user = await load_user(session, ctx, user_id, if_match)
    changes = body.model_dump(exclude_unset=True)
    for field in ("first_name", "last_name", "email", "language", "role"):
        if field in changes and changes[field] is None:
            raise ValidationFailed(
                f"{field} cannot be cleared.",
                errors=[FieldError(loc=["body", field], msg="must not be null", type="value")],
            )
    now = utcnow()
    if "expires_at" in changes:
        _in_future(changes["expires_at"], "expires_at", now)
    new_role = changes.get("role")
    details: dict[str, object] = {}
    if new_role is not None and new_role != user.role:
        if user.role == Role.CUSTOMER_PORTAL_ADMIN:
            ensure_not_self(ctx, user, "demote")
            await ensure_not_last_admin(session, user)
        details["role"] = {"from": user.role, "to": new_role}
    changed = sorted(field for field, value in changes.items() if getattr(user, field) != value)
    for field in changed:
        setattr(user, field, str(changes[field]) if field == "email" else changes[field])
    if changed:
        await session.flush()
        await ctx.record(session, "user.updated", user, fields=changed, **details)
    return await repository.get_user_row(session, user.id)


async def delete_user(
    session: AsyncSession, ctx: AdminContext, user_id: int, if_match: str | None
) -> None:
    """Delete the account; its sessions end with it, and its login ID becomes free again."""
    user = await load_user(session, ctx, user_id, if_match)
    ensure_not_self(ctx, user, "delete")
    await ensure_not_last_admin(session, user)
    await ctx.record(session, "user.deleted", user, login=user.login, status=user.status)
    await void_links(session, user.id, utcnow())
    await repository.delete_user(session, user)
