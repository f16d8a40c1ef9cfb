"""Password tokens: issue (voiding older ones), look up without using, consume atomically."""

from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.clock import utcnow
from app.core.security import hash_token, new_token
from app.invitations import repository
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
    return token, await repository.add_token(session, row)


async def void_tokens(session: AsyncSession, user_id: int, now: datetime) -> None:
    await repository.void_open_tokens(session, user_id, now)


async def find_usable_token(session: AsyncSession, token: str) -> PasswordToken | None:
    """The token's row if it is unused, not voided and not expired; does not consume it."""
    return await repository.find_usable_token_by_hash(session, hash_token(token), utcnow())


async def consume_token(session: AsyncSession, token: str) -> tuple[int, TokenPurpose] | None:
    """Use the token up: (user id, purpose), or None; of concurrent uses exactly one wins."""
    return await repository.consume_token_by_hash(session, hash_token(token), utcnow())
