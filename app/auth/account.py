"""The signed-in user's own account: profile changes and password change."""

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.errors import CurrentPasswordInvalid, CurrentPasswordRequired
from app.auth.repository import own_account
from app.auth.schemas import ProfileUpdate
from app.auth.service import guard_password_check, note_failed_password, record_own_event
from app.auth.sessions import confirm_session
from app.auth.throttle import clear_login_failures
from app.core.auth import Principal
from app.core.clock import utcnow
from app.core.errors import FieldError
from app.core.state import AppState
from app.invitations.mail import enqueue_password_changed_mail

# Registers the unique index on login_key as 409 `login_taken`: a login ID taken by anyone
# (case-insensitively) is refused by the database itself, without a racy check first.
from app.users import errors as _user_errors  # noqa: F401
from app.users.models import UserAccount

# Changing these takes the current password: they are what an attacker with a stolen session
# would change to take the account over (login ID, and the address reset links go to).
SENSITIVE_FIELDS = ("login", "email")


async def confirm_current_password(
    state: AppState, session: AsyncSession, user: UserAccount, password: str, client_ip: str | None
) -> None:
    """Check the current password, throttled and counted like a login of this account."""
    now = utcnow()
    await guard_password_check(
        state, session, login_key=user.login_key, client_ip=client_ip, now=now
    )
    matches, _ = await state.hasher.verify(password, user.password_hash)
    if not matches:
        await note_failed_password(
            state,
            session,
            login_key=user.login_key,
            user=user,
            client_ip=client_ip,
            now=now,
            reason="wrong_current_password",
        )
        raise CurrentPasswordInvalid()
    await clear_login_failures(session, user.login_key)


async def update_profile(
    state: AppState,
    session: AsyncSession,
    principal: Principal,
    changes: ProfileUpdate,
    *,
    client_ip: str | None,
) -> UserAccount:
    """Apply the given fields; login ID and e-mail only after the current password."""
    user = await own_account(session, principal)
    data: dict[str, Any] = changes.model_dump(exclude_unset=True, exclude={"current_password"})
    changed = {name: value for name, value in data.items() if getattr(user, name) != value}
    if any(name in changed for name in SENSITIVE_FIELDS):
        if changes.current_password is None:
            raise CurrentPasswordRequired(
                "Changing the login ID or the e-mail requires the current password.",
                errors=[
                    FieldError(
                        loc=["body", "current_password"],
                        msg="required to change the login ID or the e-mail",
                        type="missing",
                    )
                ],
            )
        await confirm_current_password(state, session, user, changes.current_password, client_ip)
    if not changed:
        return user
    for name, value in changed.items():
        setattr(user, name, value)
    # A new login also sets login_key, whose unique index answers 409 login_taken, race-free.
    await session.flush()
    await record_own_event(
        session,
        "user.updated",
        user,
        client_ip=client_ip,
        details={"fields": sorted(changed), "self_service": True},
    )
    return user


async def change_password(
    state: AppState,
    session: AsyncSession,
    principal: Principal,
    *,
    current_password: str,
    new_password: str,
    client_ip: str | None,
) -> None:
    """Set a new password; every other session of the account ends, this one stays."""
    user, settings = await own_account(session, principal), state.settings
    # The policy first: a 129-character password is refused before any hashing.
    user.check_new_password(new_password, brand=settings.brand_name, field="new_password")
    await confirm_current_password(state, session, user, current_password, client_ip)
    now = utcnow()
    user.password_hash = await state.hasher.hash(new_password)
    user.password_set_at = now
    user.end_sessions(now)
    await session.flush()
    await confirm_session(session, principal.session_id, now)
    await enqueue_password_changed_mail(session, settings, user, now)
    await record_own_event(session, "password.changed", user, client_ip=client_ip)
