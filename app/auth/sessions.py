"""Server-side sessions: access tokens that name them, refresh tokens that rotate within them."""

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import record_event
from app.auth import repository
from app.auth.cache import CachedSession, PrincipalCache
from app.auth.models import AuthSession
from app.core.auth import Principal
from app.core.clock import utcnow
from app.core.errors import Unauthenticated
from app.core.security import hash_token, new_token
from app.core.signing import InvalidToken
from app.core.state import AppState
from app.users.models import Account, UserAccount
from app.users.status import UserStatus

SESSION_ID_LENGTH = 32
_HEX = frozenset("0123456789abcdef")


@dataclass(frozen=True)
class IssuedTokens:
    """What a login or a refresh hands to the client."""

    access_token: str
    refresh_token: str
    expires_in: int
    session_id: str


def _access_token(
    state: AppState, user: UserAccount | Account, session_id: str, now: datetime
) -> str:
    settings = state.settings
    issued = int(now.timestamp())
    return state.keys.sign(
        {
            "iss": settings.jwt_issuer,
            "aud": settings.api_audience,
            "sub": str(user.id),
            "sid": session_id,
            "jti": secrets.token_urlsafe(12),
            "iat": issued,
            "exp": issued + int(settings.access_token_ttl.total_seconds()),
        }
    )


def _refresh_token(session_id: str) -> tuple[str, str]:
    """(token for the client, hash to store); the session id prefix finds the session."""
    token = f"{session_id}.{new_token()}"
    return token, hash_token(token)


def new_session_row(
    state: AppState,
    user_id: int,
    *,
    client_ip: str | None,
    user_agent: str | None,
    now: datetime,
) -> tuple[dict[str, object], str]:
    """The `auth_sessions` row of a new session (every column), and its refresh token."""
    settings = state.settings
    session_id = secrets.token_hex(SESSION_ID_LENGTH // 2)
    refresh_token, refresh_hash = _refresh_token(session_id)
    row: dict[str, object] = {
        "id": session_id,
        "user_id": user_id,
        "refresh_token_hash": refresh_hash,
        "refresh_count": 0,
        "created_at": now,
        "authenticated_at": now,
        "last_refreshed_at": now,
        "idle_expires_at": min(now + settings.session_idle_ttl, now + settings.session_ttl),
        "expires_at": now + settings.session_ttl,
        "revoked_at": None,
        "revoked_reason": None,
        "client_ip": client_ip,
        "user_agent": (user_agent or "")[:200] or None,
    }
    return row, refresh_token


def issued_tokens(
    state: AppState,
    user: UserAccount | Account,
    session_row: dict[str, object],
    refresh_token: str,
    now: datetime,
) -> IssuedTokens:
    """What the client gets for the session of `session_row`."""
    session_id = str(session_row["id"])
    return IssuedTokens(
        access_token=_access_token(state, user, session_id, now),
        refresh_token=refresh_token,
        expires_in=int(state.settings.access_token_ttl.total_seconds()),
        session_id=session_id,
    )


async def start_session(
    state: AppState,
    session: AsyncSession,
    user: UserAccount | Account,
    *,
    client_ip: str | None = None,
    user_agent: str | None = None,
) -> IssuedTokens:
    """Open a session for a user who just proved who he is."""
    now = utcnow()
    row, refresh_token = new_session_row(
        state, user.id, client_ip=client_ip, user_agent=user_agent, now=now
    )
    await repository.add_session(session, row)
    return issued_tokens(state, user, row, refresh_token, now)


async def authenticate(
    state: AppState, access_token: str, cache: PrincipalCache | None = None
) -> Principal:
    """The principal of a genuine access token whose session is alive and account may log in.

    One query reads the session and the account together, so logout, disable, lock and a
    password change act on the very next request. With a `cache`, a session checked before
    and unchanged since is answered from memory (see app/auth/cache.py). The query runs in a
    short read of its own, not in the request's unit of work, so that a request answered
    from the cache opens no database session at all.
    """
    claims = _verified_claims(state, access_token, cache)
    session_id, subject = claims["sid"], int(claims["sub"])
    now = utcnow()
    entry = cache.session(session_id) if cache is not None else None
    if entry is None:
        generation = cache.generation if cache is not None else 0
        async with state.database.sessionmaker() as session:
            entry = await _read_session(session, session_id)
        if entry is None:
            raise Unauthenticated("The session has ended.")
        if cache is not None:
            cache.remember_session(session_id, entry, generation)
    if (
        entry.account.id != subject
        or entry.expires_at <= now
        or entry.idle_expires_at <= now
        or not may_log_in(entry.account, now)
    ):
        raise Unauthenticated("The session has ended.")
    return Principal(user=entry.account, session_id=session_id)


async def _read_session(session: AsyncSession, session_id: str) -> CachedSession | None:
    """The account of a session that is not revoked and not ended by its account, if any."""
    found = await repository.read_live_session(session, session_id)
    if found is None:
        return None
    user, expires_at, idle_expires_at = found
    return CachedSession(Account.of(user), expires_at, idle_expires_at)


def _verified_claims(
    state: AppState, access_token: str, cache: PrincipalCache | None
) -> dict[str, Any]:
    """The claims of a genuine, unexpired access token of ours, with `sid` and a numeric `sub`."""
    settings = state.settings
    claims = cache.claims(access_token) if cache is not None else None
    if claims is None:
        try:
            claims = state.keys.verify(
                access_token, audience=settings.api_audience, issuer=settings.jwt_issuer
            )
        except InvalidToken as exc:
            raise Unauthenticated("The access token is not valid.") from exc
        session_id, subject = claims.get("sid"), claims.get("sub")
        if not isinstance(session_id, str) or not isinstance(subject, str):
            raise Unauthenticated("The access token is not valid.")
        # isascii(): "²".isdigit() is true, but int("²") fails.
        if not (subject.isascii() and subject.isdigit()) or len(subject) > 18:
            raise Unauthenticated("The access token is not valid.")
        if cache is not None:
            cache.remember_claims(access_token, claims)
    elif utcnow().timestamp() > claims["exp"]:
        raise Unauthenticated("The access token is not valid.")
    return claims


class CachedAuthenticator:
    """`authenticate` with the process's cache of signed-in sessions."""

    def __init__(self, cache: PrincipalCache) -> None:
        self.cache = cache

    async def __call__(self, state: AppState, access_token: str) -> Principal:
        return await authenticate(state, access_token, self.cache)


def session_still_valid(auth_session: AuthSession, user: UserAccount) -> bool:
    """False once the account ended all its sessions after this one authenticated."""
    return user.sessions_valid_from is None or (
        auth_session.authenticated_at >= user.sessions_valid_from
    )


def may_log_in(user: UserAccount | Account, now: datetime) -> bool:
    """Only active accounts whose planned end has not passed may log in or stay logged in."""
    if user.status != UserStatus.ACTIVE:
        return False
    return user.expires_at is None or user.expires_at > now


async def refresh_session(
    state: AppState, session: AsyncSession, refresh_token: str, *, client_ip: str | None = None
) -> tuple[IssuedTokens, UserAccount]:
    """Rotate the refresh token; an already-used one is a replay and ends the whole session."""
    session_id = refresh_token.split(".", 1)[0]
    now, settings = utcnow(), state.settings
    invalid = Unauthenticated("The refresh token is not valid.")
    # Only our own shape reaches the database (PostgreSQL refuses e.g. NUL characters).
    if len(session_id) != SESSION_ID_LENGTH or not all(c in _HEX for c in session_id):
        raise invalid
    auth_session = await repository.lock_session(session, session_id)
    if auth_session is None or auth_session.revoked_at is not None:
        raise invalid
    if auth_session.expires_at <= now or auth_session.idle_expires_at <= now:
        raise invalid
    user = await repository.get_account(session, auth_session.user_id)
    if user is None or not may_log_in(user, now) or not session_still_valid(auth_session, user):
        raise invalid
    new_refresh, new_hash = _refresh_token(session_id)
    rotated = await repository.rotate_refresh_token(
        session,
        session_id,
        presented_hash=hash_token(refresh_token),
        new_hash=new_hash,
        now=now,
        idle_expires_at=min(now + settings.session_idle_ttl, auth_session.expires_at),
    )
    if not rotated:
        await revoke_session(session, session_id, reason="refresh_reuse")
        await record_event(
            session,
            "session.refresh_reused",
            customer_id=user.customer_id,
            target_type="user",
            target_id=user.id,
            client_ip=client_ip,
        )
        raise Unauthenticated(
            "The refresh token was already used; the session has ended.", keep_changes=True
        )
    tokens = IssuedTokens(
        access_token=_access_token(state, user, session_id, now),
        refresh_token=new_refresh,
        expires_in=int(settings.access_token_ttl.total_seconds()),
        session_id=session_id,
    )
    return tokens, user


async def revoke_session(session: AsyncSession, session_id: str, *, reason: str) -> None:
    """End one session at once (logout, refresh token replay)."""
    await repository.revoke_session(session, session_id, reason=reason, now=utcnow())


async def confirm_session(session: AsyncSession, session_id: str, now: datetime) -> None:
    """The user proved his password again in this session, so it outlives `end_sessions(now)`."""
    await repository.set_authenticated_at(session, session_id, now)
