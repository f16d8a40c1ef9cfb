"""Password tokens: issue (voiding older ones), look up without using, consume atomically."""

from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.clock import utcnow
from app.core.security import hash_token, new_token
from app.invitations.models import PasswordToken, TokenPurpose


async def issue_token(
    session: AsyncSession, user_id: int, purpose: TokenPurpose, ttl: timedelta
) -> tuple[str, PasswordToken]:
    """A new token for the user; every older unused token of the user dies with it."""
    now = utcnow()
    await void_tokens(session, user_id, now)
    token = new_token()
    row = PasswordToken(
        token_hash=hash_token(token),
        user_id=user_id,
        purpose=purpose,
        created_at=now,
        expires_at=now + ttl,
    )
    session.add(row)
    await session.flush()
    return token, row


async def void_tokens(session: AsyncSession, user_id: int, now: datetime) -> None:
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


async def find_usable_token(session: AsyncSession, token: str) -> PasswordToken | None:
    """The token's row if it is unused, not voided and not expired; does not consume it."""
    return (
        await session.execute(
            select(PasswordToken).where(
                PasswordToken.token_hash == hash_token(token),
                PasswordToken.used_at.is_(None),
                PasswordToken.voided_at.is_(None),
                PasswordToken.expires_at > utcnow(),
            )
        )
    ).scalar_one_or_none()


async def consume_token(session: AsyncSession, token: str) -> tuple[int, TokenPurpose] | None:
    """Mark the token used in one conditional UPDATE: of concurrent uses exactly one wins.

    On PostgreSQL the losers block on the row lock, re-check the WHERE clause after the winner
    commits, and match nothing.
    """
    now = utcnow()
    result = await session.execute(
        update(PasswordToken)
        .where(
            PasswordToken.token_hash == hash_token(token),
            PasswordToken.used_at.is_(None),
            PasswordToken.voided_at.is_(None),
            PasswordToken.expires_at > now,
        )
        .values(used_at=now)
        .returning(PasswordToken.user_id, PasswordToken.purpose)
        .execution_options(synchronize_session=False)
    )
    row = result.one_or_none()
    return None if row is None else (row[0], row[1])
