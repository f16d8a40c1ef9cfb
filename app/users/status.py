"""The account state machine: the states, the one table of transitions, one function to move.

Every status change of a user account goes through `apply_event()`; an event the table does
not allow for the current status answers 409 `invalid_transition` and changes nothing.
"""

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from app.core.errors import InvalidTransition

if TYPE_CHECKING:
    from app.users.models import UserAccount


class UserStatus(StrEnum):
    """Where a user account stands; only `active` may log in."""

    SCHEDULED = "scheduled"
    INVITED = "invited"
    ACTIVE = "active"
    LOCKED = "locked"
    DISABLED = "disabled"
    EXPIRED = "expired"


STATUS_LABELS: dict[UserStatus, dict[str, str]] = {
    UserStatus.SCHEDULED: {"de": "Einladung geplant", "en": "Invitation scheduled"},
    UserStatus.INVITED: {"de": "Einladung versendet", "en": "Invitation sent"},
    UserStatus.ACTIVE: {"de": "Aktiv", "en": "Active"},
    UserStatus.LOCKED: {"de": "Gesperrt", "en": "Locked"},
    UserStatus.DISABLED: {"de": "Deaktiviert", "en": "Disabled"},
    UserStatus.EXPIRED: {"de": "Abgelaufen", "en": "Expired"},
}


class StatusEvent(StrEnum):
    """Something that happens to an account and may change its status."""

    SEND_SCHEDULED_INVITATION = "send_scheduled_invitation"
    RESEND_INVITATION = "resend_invitation"
    ACCEPT_INVITATION = "accept_invitation"
    LOCK = "lock"
    UNLOCK = "unlock"
    COMPLETE_RESET = "complete_reset"
    DISABLE = "disable"
    ENABLE = "enable"
    EXPIRE = "expire"


class _Reactivated:
    """Target of `enable`: `active` if the account has a password, else `invited` again."""


REACTIVATED = _Reactivated()
Target = UserStatus | _Reactivated

S = UserStatus
E = StatusEvent
_NOT_DISABLED = [S.SCHEDULED, S.INVITED, S.ACTIVE, S.LOCKED, S.EXPIRED]

# (from, event) -> to. DESIGN.md section 2, row by row.
TRANSITIONS: dict[tuple[UserStatus, StatusEvent], Target] = {
    (S.SCHEDULED, E.SEND_SCHEDULED_INVITATION): S.INVITED,
    (S.SCHEDULED, E.RESEND_INVITATION): S.INVITED,
    (S.INVITED, E.RESEND_INVITATION): S.INVITED,
    (S.INVITED, E.ACCEPT_INVITATION): S.ACTIVE,
    (S.ACTIVE, E.LOCK): S.LOCKED,
    (S.LOCKED, E.UNLOCK): S.ACTIVE,
    (S.LOCKED, E.COMPLETE_RESET): S.ACTIVE,
    **{(state, E.DISABLE): S.DISABLED for state in _NOT_DISABLED},
    (S.DISABLED, E.ENABLE): REACTIVATED,
    (S.EXPIRED, E.ENABLE): REACTIVATED,
    # "any but disabled": an expired account may expire again (a no-op, not an error).
    **{(state, E.EXPIRE): S.EXPIRED for state in _NOT_DISABLED},
}

# Initial states of a new account (the "create" rows of the table).
INITIAL_INVITED = S.INVITED
INITIAL_SCHEDULED = S.SCHEDULED


@dataclass(frozen=True)
class Transition:
    """What apply_event() did, for the audit log and for the caller's follow-up work."""

    event: StatusEvent
    before: UserStatus
    after: UserStatus

    @property
    def needs_new_invitation(self) -> bool:
        """Enabling an account that never set a password sends a new invitation."""
        return self.event == E.ENABLE and self.after == S.INVITED


def allowed(status: UserStatus, event: StatusEvent) -> bool:
    return (status, event) in TRANSITIONS


def target_of(status: UserStatus, event: StatusEvent, *, has_password: bool) -> UserStatus:
    """The status `event` leads to from `status`, or InvalidTransition."""
    target = TRANSITIONS.get((status, event))
    if target is None:
        raise InvalidTransition(
            f"An account in status '{status}' cannot {event.replace('_', ' ')}."
        )
    if isinstance(target, _Reactivated):
        return S.ACTIVE if has_password else S.INVITED
    return target


def apply_event(user: "UserAccount", event: StatusEvent, now: datetime) -> Transition:
    """Move `user` along the table; leaving `active` ends all its sessions at once."""
    before = user.status
    after = target_of(before, event, has_password=user.password_hash is not None)
    user.status = after
    if before == S.ACTIVE and after != S.ACTIVE:
        user.end_sessions(now)
    return Transition(event=event, before=before, after=after)
