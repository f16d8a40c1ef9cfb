"""The account state machine, table-driven over every (state, event) pair (DESIGN.md §2)."""

import itertools
from datetime import UTC, datetime

import pytest

from app.core.errors import InvalidTransition
from app.core.permissions import Role
from app.users.models import UserAccount
from app.users.status import StatusEvent, UserStatus, apply_event

S, E = UserStatus, StatusEvent
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
ALL = list(S)

# Written from DESIGN.md's table, independently of status.TRANSITIONS:
# (from, event) -> (to without a password, to with a password)
EXPECTED: dict[tuple[UserStatus, StatusEvent], tuple[UserStatus, UserStatus]] = {
    (S.SCHEDULED, E.SEND_SCHEDULED_INVITATION): (S.INVITED, S.INVITED),
    (S.SCHEDULED, E.RESEND_INVITATION): (S.INVITED, S.INVITED),
    (S.INVITED, E.RESEND_INVITATION): (S.INVITED, S.INVITED),
    (S.INVITED, E.ACCEPT_INVITATION): (S.ACTIVE, S.ACTIVE),
    (S.ACTIVE, E.LOCK): (S.LOCKED, S.LOCKED),
    (S.LOCKED, E.UNLOCK): (S.ACTIVE, S.ACTIVE),
    (S.LOCKED, E.COMPLETE_RESET): (S.ACTIVE, S.ACTIVE),
    (S.DISABLED, E.ENABLE): (S.INVITED, S.ACTIVE),
    (S.EXPIRED, E.ENABLE): (S.INVITED, S.ACTIVE),
}
for state in ALL:
    if state != S.DISABLED:
        EXPECTED[(state, E.DISABLE)] = (S.DISABLED, S.DISABLED)
        EXPECTED[(state, E.EXPIRE)] = (S.EXPIRED, S.EXPIRED)

PAIRS = list(itertools.product(ALL, list(E), [False, True]))


def _user(status: UserStatus, *, has_password: bool) -> UserAccount:
    return UserAccount(
        id=1,
        customer_id=1,
        login="x.user",
        role=Role.PBX_ADMIN,
        status=status,
        first_name="X",
        last_name="Y",
        email="x@example.com",
        password_hash="$argon2id$dummy" if has_password else None,
    )


@pytest.mark.parametrize(("state", "event", "has_password"), PAIRS)
def test_every_state_event_pair(state: UserStatus, event: StatusEvent, has_password: bool) -> None:
    user = _user(state, has_password=has_password)
    expected = EXPECTED.get((state, event))
    if expected is None:
        with pytest.raises(InvalidTransition) as info:
            apply_event(user, event, NOW)
        assert info.value.status == 409
        assert info.value.code == "invalid_transition"
        assert user.status == state, "a refused event changes nothing"
        assert user.sessions_valid_from is None
        return
    transition = apply_event(user, event, NOW)
    assert user.status == expected[1 if has_password else 0]
    assert (transition.before, transition.after) == (state, user.status)
    leaves_active = state == S.ACTIVE and user.status != S.ACTIVE
    assert (user.sessions_valid_from == NOW) == leaves_active


def test_enable_without_password_needs_new_invitation() -> None:
    user = _user(S.DISABLED, has_password=False)
    assert apply_event(user, E.ENABLE, NOW).needs_new_invitation
    user = _user(S.DISABLED, has_password=True)
    assert not apply_event(user, E.ENABLE, NOW).needs_new_invitation


def test_table_covers_both_allowed_and_refused() -> None:
    assert 0 < len(EXPECTED) < len(ALL) * len(E)
