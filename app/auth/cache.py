"""The process's cache of signed-in sessions: the hot path of a request without a query.

Every authenticated request must see logout, disable, lock and password change at once. The
database is the truth; this cache only remembers, per session, what the last check found,
and forgets it the moment a row it depends on changes:

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

import re
import time
import weakref
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction
from sqlalchemy.sql.elements import TextClause

from app.auth.models import AuthSession
from app.core.direct import Transaction
from app.users.models import Account, UserAccount

WATCHED_TABLES = frozenset({UserAccount.__tablename__, AuthSession.__tablename__})
_WRITES = re.compile(r"\b(update|delete)\b")
_CHANGES = "auth_cache_changes"
_ALL = "*"
# Seconds a checked session is answered from memory before it is checked again.
DEFAULT_MAX_AGE = 5.0
# Execution option of a bulk UPDATE that touches one account's rows only: `{CHANGED_USER: id}`.
CHANGED_USER = "changed_user_id"


@dataclass(frozen=True, slots=True)
class CachedSession:
    """What the last check of one session found: the account, and when the session ends."""

    account: Account
    expires_at: datetime
    idle_expires_at: datetime


class PrincipalCache:
    """Sessions and verified token claims of this process, forgotten on every change."""

    def __init__(
        self, *, active: bool, max_entries: int = 10_000, max_age: float = DEFAULT_MAX_AGE
    ) -> None:
        # Whether every change reaches this cache; while not, it neither answers nor stores.
        self._active = active
        self.max_entries = max_entries
        # A session is checked in the database again once its entry is this old (seconds),
        # changed or not: the bound on a change this process cannot hear of.
        self.max_age = max_age
        self.generation = 0
        self._sessions: dict[str, tuple[CachedSession, float]] = {}
        self._sessions_of_user: dict[int, set[str]] = {}
        self._claims: dict[str, dict[str, Any]] = {}
        _LIVE_CACHES.add(self)

    @property
    def active(self) -> bool:
        return self._active

    def activate(self) -> None:
        self.forget_all()
        self._active = True

    def deactivate(self) -> None:
        self._active = False
        self.forget_all()

    # -- sessions ------------------------------------------------------------

    def session(self, session_id: str) -> CachedSession | None:
        found = self._sessions.get(session_id) if self._active else None
        if found is None:
            return None
        entry, checked_at = found
        if time.monotonic() - checked_at >= self.max_age:
            del self._sessions[session_id]
            return None
        return entry

    def remember_session(self, session_id: str, entry: CachedSession, generation: int) -> None:
        """Keep `entry`, read when the cache was at `generation`, unless a change came since."""
        if not self._active or generation != self.generation:
            return
        if len(self._sessions) >= self.max_entries:
            self._forget_sessions()
        self._sessions[session_id] = (entry, time.monotonic())
        self._sessions_of_user.setdefault(entry.account.id, set()).add(session_id)

    def forget_user(self, user_id: int) -> None:
        self.generation += 1
        for session_id in self._sessions_of_user.pop(user_id, ()):
            self._sessions.pop(session_id, None)

    def forget_all(self) -> None:
        self.generation += 1
        self._forget_sessions()

    def _forget_sessions(self) -> None:
        self._sessions.clear()
        self._sessions_of_user.clear()

    # -- token claims --------------------------------------------------------

    def claims(self, token: str) -> dict[str, Any] | None:
        return self._claims.get(token)

    def remember_claims(self, token: str, claims: dict[str, Any]) -> None:
        """Claims of a token whose signature was verified (never of one that failed)."""
        if len(self._claims) >= self.max_entries:
            self._claims.clear()
        self._claims[token] = claims


_LIVE_CACHES: "weakref.WeakSet[PrincipalCache]" = weakref.WeakSet()


def forget_changed(changes: set[int | str]) -> None:
    """Apply one transaction's changes to every cache of this process."""
    for cache in list(_LIVE_CACHES):
        if _ALL in changes:
            cache.forget_all()
        else:
            for user_id in changes:
                cache.forget_user(int(user_id))


def _changes_of(session: Session) -> set[int | str]:
    changes: set[int | str] = session.info.setdefault(_CHANGES, set())
    return changes


@event.listens_for(Session, "after_flush")
def _note_flushed_changes(session: Session, _context: UOWTransaction) -> None:
    flushed: set[int | str] = set()
    for instance in (*session.dirty, *session.deleted):
        if isinstance(instance, UserAccount):
            flushed.add(instance.id)
        elif isinstance(instance, AuthSession):
            flushed.add(instance.user_id)
    if flushed:
        _changes_of(session).update(flushed)
        forget_changed(flushed)


def _changes_watched_rows(state: ORMExecuteState) -> bool:
    if isinstance(state.statement, TextClause):
        # Plain SQL: assume the worst of any UPDATE or DELETE that names a watched table.
        sql = state.statement.text.lower()
        return bool(_WRITES.search(sql)) and any(name in sql for name in WATCHED_TABLES)
    if not (state.is_update or state.is_delete):
        return False
    return getattr(getattr(state.statement, "table", None), "name", None) in WATCHED_TABLES


def note_changed_user(session: Session, user_id: int | None) -> None:
    """A statement of `session` changed rows of one account (of any, with None): forget its
    sessions now, and again when the transaction commits."""
    changed: set[int | str] = {_ALL} if user_id is None else {int(user_id)}
    _changes_of(session).update(changed)
    forget_changed(changed)


def note_changed_user_in(transaction: Transaction, user_id: int) -> None:
    """`note_changed_user` for a statement of a transaction of direct statements."""
    changed: set[int | str] = {int(user_id)}
    forget_changed(changed)
    transaction.after_commit(lambda: forget_changed(changed))


@event.listens_for(Session, "do_orm_execute")
def _note_bulk_changes(state: ORMExecuteState) -> None:
    if _changes_watched_rows(state):
        # Which rows a bulk statement touches is not known here unless it says so; if not,
        # every session is forgotten.
        note_changed_user(state.session, state.execution_options.get(CHANGED_USER))


@event.listens_for(Session, "after_commit")
def _forget_committed_changes(session: Session) -> None:
    changes = session.info.pop(_CHANGES, None)
    if changes:
        forget_changed(changes)


@event.listens_for(Session, "after_rollback")
def _drop_rolled_back_changes(session: Session) -> None:
    session.info.pop(_CHANGES, None)
