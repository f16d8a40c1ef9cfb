"""Queries of the password flows: tokens, invitations, accounts by login or id, due invitations."""

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.customers.models import Customer, EServiceState
from app.invitations.models import Invitation, PasswordToken, TokenPurpose
from app.users.models import UserAccount
from app.users.status import UserStatus


async def add_token(session: AsyncSession, token: PasswordToken) -> PasswordToken:
    session.add(token)
    await session.flush()
    return token


async def void_open_tokens(session: AsyncSession, user_id: int, now: datetime) -> None:
    """Mark every unused, not yet voided token of the user voided at `now`."""
    await session.execute(
        update(PasswordToken)
        .where(
            PasswordToken.user_id == user_id,
            PasswordToken.used_at.is_(None),
            PasswordToken.voided_at.is_(None),
        )
        .values(voided_at=now)
        .execution_options(synchronize_session=False)
    )


def _usable(token_hash: str, now: datetime) -> tuple[ColumnElement[bool], ...]:
    """The token of `token_hash`, if unused, not voided and not expired at `now`."""
    return (
        PasswordToken.token_hash == token_hash,
        PasswordToken.used_at.is_(None),
        PasswordToken.voided_at.is_(None),
        PasswordToken.expires_at > now,
    )


async def find_usable_token_by_hash(
    session: AsyncSession, token_hash: str, now: datetime
) -> PasswordToken | None:
    """The token's row if it is unused, not voided and not expired at `now`."""
    return (
        await session.execute(select(PasswordToken).where(*_usable(token_hash, now)))
    ).scalar_one_or_none()


async def consume_token_by_hash(
    session: AsyncSession, token_hash: str, now: datetime
) -> tuple[int, TokenPurpose] | None:
    """Mark the token used in one conditional UPDATE: of concurrent uses exactly one wins.

    On PostgreSQL the losers block on the row lock, re-check the WHERE clause after the winner
    commits, and match nothing.
    """
    result = await session.execute(
        update(PasswordToken)
        .where(*_usable(token_hash, now))
        .values(used_at=now)
        .returning(PasswordToken.user_id, PasswordToken.purpose)
        .execution_options(synchronize_session=False)
    )
    row = result.one_or_none()
    return None if row is None else (row[0], row[1])


async def get_invitation(session: AsyncSession, user_id: int) -> Invitation | None:
    return await session.get(Invitation, user_id)


async def save_invitation(session: AsyncSession, invitation: Invitation) -> Invitation:
    """Insert a new invitation record, or write the changes of one already loaded."""
    session.add(invitation)
    await session.flush()
    return invitation


async def get_user(session: AsyncSession, user_id: int) -> UserAccount | None:
    return await session.get(UserAccount, user_id)


async def find_user_by_login(session: AsyncSession, login: str) -> UserAccount | None:
    """The account whose login ID matches case-insensitively, if any."""
    return (
        await session.execute(
            select(UserAccount).where(UserAccount.login_key == UserAccount.key_for(login))
        )
    ).scalar_one_or_none()


async def mark_invitation_accepted(session: AsyncSession, user_id: int, now: datetime) -> None:
    await session.execute(
        update(Invitation)
        .where(Invitation.user_id == user_id, Invitation.accepted_at.is_(None))
        .values(accepted_at=now)
        .execution_options(synchronize_session=False)
    )


async def activate_pending_customer(session: AsyncSession, customer_id: int, now: datetime) -> bool:
    """Turn the customer's e:service access on if it is still pending; True if it changed.

    The letter's activation code dies with it: an active customer is never registered again.
    """
    result = await session.execute(
        update(Customer)
        .where(Customer.id == customer_id, Customer.eservice_state == EServiceState.PENDING)
        .values(
            eservice_state=EServiceState.ACTIVE,
            activated_at=now,
            updated_at=now,
            activation_code_hash=None,
        )
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def claim_due_scheduled_users(
    session: AsyncSession, now: datetime, *, limit: int = 100
) -> Sequence[UserAccount]:
    """Scheduled accounts whose invitation time has come, locked for this transaction.

    On PostgreSQL rows another scheduler holds are skipped (`FOR UPDATE SKIP LOCKED`), so
    several processes never send the same invitation twice; SQLite has one writer anyway.
    """
    return (
        (
            await session.execute(
                select(UserAccount)
                .join(Invitation, Invitation.user_id == UserAccount.id)
                .where(
                    UserAccount.status == UserStatus.SCHEDULED,
                    Invitation.scheduled_for.is_not(None),
                    Invitation.scheduled_for <= now,
                    or_(UserAccount.expires_at.is_(None), UserAccount.expires_at > now),
                )
                .order_by(Invitation.scheduled_for, UserAccount.id)
                .limit(limit)
                .with_for_update(skip_locked=True, of=UserAccount)
            )
        )
        .scalars()
        .all()
    )
