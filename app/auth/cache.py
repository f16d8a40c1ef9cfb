"""The process's cache of signed-in sessions: the hot path of a request without a query.

Every authenticated request must see logout, disable, lock and password change at once. The
database is the truth; this cache only remembers, per session, what the last check found,
and forgets it the moment a row it depends on changes (app/core/changes.py):

- in this process, when a flush touches `user_accounts` or `auth_sessions`, and again when
  that transaction commits (so a check that read the old row meanwhile is not kept);
- in every process on PostgreSQL, through a trigger that NOTIFYs `eservice_accounts` with
  the user id at commit, which each API process LISTENs to. While the listening connection
  is down, the cache answers nothing and every request queries the database.

On SQLite (one API process) the first rule covers every writer of those rows that runs
inside the API process; see docs/authentication.md for the one exception.

Verified access-token claims are cached too, keyed by the whole token, so that a token's
ES256 signature is checked once per process rather than once per request; expiry is
checked on every use.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from app.auth.models import AuthSession
from app.core.changes import DEFAULT_MAX_AGE, RecentCache, Watch
from app.core.direct import Transaction
from app.users.models import Account, UserAccount

# The NOTIFY channel of account and session changes (migration 0003).
CHANNEL = "eservice_accounts"
# Execution option of a bulk UPDATE that touches one account's rows only: `{CHANGED_USER: id}`.
CHANGED_USER = "changed_user_id"
ACCOUNTS = Watch(
    "auth_cache_changes",
    owners={UserAccount: lambda user: user.id, AuthSession: lambda row: row.user_id},
    tables=frozenset({UserAccount.__tablename__, AuthSession.__tablename__}),
    option=CHANGED_USER,
)


@dataclass(frozen=True, slots=True)
class CachedSession:
    """What the last check of one session found: the account, and when the session ends."""

    account: Account
    expires_at: datetime
    idle_expires_at: datetime


class PrincipalCache(RecentCache[str, CachedSession]):
    """Sessions (by id, under their account) and verified token claims of this process."""

    def __init__(
        self, *, active: bool, max_entries: int = 10_000, max_age: float = DEFAULT_MAX_AGE
    ) -> None:
        super().__init__(active=active, max_entries=max_entries, max_age=max_age)
        self._claims: dict[str, dict[str, Any]] = {}
        ACCOUNTS.register(self)

    # -- sessions ------------------------------------------------------------

    def session(self, session_id: str) -> CachedSession | None:
        return self.get(session_id)

    def remember_session(self, session_id: str, entry: CachedSession, generation: int) -> None:
        """Keep `entry`, read when the cache was at `generation`, unless a change came since."""
        self.remember(session_id, entry.account.id, entry, generation)

    def forget_user(self, user_id: int) -> None:
        self.forget_owner(user_id)

    # -- token claims --------------------------------------------------------

    def claims(self, token: str) -> dict[str, Any] | None:
        return self._claims.get(token)

    def remember_claims(self, token: str, claims: dict[str, Any]) -> None:
        """Claims of a token whose signature was verified (never of one that failed)."""
        if len(self._claims) >= self.max_entries:
            self._claims.clear()
        self._claims[token] = claims


def note_changed_user(session: Session, user_id: int | None) -> None:
    """A statement of `session` changed rows of one account (of any, with None): forget its
    sessions now, and again when the transaction commits."""
    ACCOUNTS.note(session, user_id)


def note_changed_user_in(transaction: Transaction, user_id: int) -> None:
    """`note_changed_user` for a statement of a transaction of direct statements."""
    ACCOUNTS.note_in(transaction, user_id)
