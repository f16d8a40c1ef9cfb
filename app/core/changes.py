"""Caches of rows in this process, and how they hear that a row changed.

The database is the truth; a cache only remembers what the last read of some rows found,
under an *owner*: the id of the row an entry depends on (the account of a session, the
contract of a hand-off target). It forgets an owner's entries as soon as a change of that
row is known, and every entry once it is `max_age` old, changed or not:

- in this process, when an ORM flush or a bulk statement touches a watched table, and again
  when that transaction commits, so that a read that saw the old row meanwhile is not kept
  (`generation`: an entry is only remembered if nothing changed since its read began);
- from every process, on PostgreSQL, through a trigger that NOTIFYs a channel with the
  owner's id at commit (app/core/notifications.py). A cache that depends on that channel is
  off while its listening connection is down.

A `Watch` names the tables a kind of cache depends on and the owner of a changed entity;
every cache registered with it hears of each change.
"""

import re
import time
import weakref
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction
from sqlalchemy.sql.elements import TextClause

from app.core.direct import Transaction

K = TypeVar("K")
V = TypeVar("V")
# An owner id, or ALL: every entry of the cache.
Owner = int | str
ALL = "*"
# Seconds an entry is answered from memory before it is read again.
DEFAULT_MAX_AGE = 5.0
_WRITES = re.compile(r"\b(update|delete)\b")


class RecentCache(Generic[K, V]):
    """Entries read recently, each under the owner whose change makes it stale."""

    def __init__(
        self, *, active: bool, max_entries: int = 10_000, max_age: float = DEFAULT_MAX_AGE
    ) -> None:
        # Whether every change reaches this cache; while not, it neither answers nor stores.
        self._active = active
        self.max_entries = max_entries
        # An entry is read from the database again once it is this old (seconds), changed
        # or not: the bound on a change this process cannot hear of.
        self.max_age = max_age
        self.generation = 0
        self._entries: dict[K, tuple[V, float]] = {}
        self._keys_of_owner: dict[int, set[K]] = {}

    @property
    def active(self) -> bool:
        return self._active

    def activate(self) -> None:
        self.forget_all()
        self._active = True

    def deactivate(self) -> None:
        self._active = False
        self.forget_all()

    def get(self, key: K) -> V | None:
        found = self._entries.get(key) if self._active else None
        if found is None:
            return None
        value, read_at = found
        if time.monotonic() - read_at >= self.max_age:
            del self._entries[key]
            return None
        return value

    def remember(self, key: K, owner: int, value: V, generation: int) -> None:
        """Keep `value`, read when the cache was at `generation`, unless a change came since."""
        if not self._active or generation != self.generation:
            return
        if len(self._entries) >= self.max_entries:
            self._clear()
        self._entries[key] = (value, time.monotonic())
        self._keys_of_owner.setdefault(owner, set()).add(key)

    def forget_owner(self, owner: int) -> None:
        self.generation += 1
        for key in self._keys_of_owner.pop(owner, ()):
            self._entries.pop(key, None)

    def forget_all(self) -> None:
        self.generation += 1
        self._clear()

    def forget(self, owners: Iterable[Owner]) -> None:
        """Forget the entries of `owners` (of every owner, if they include ALL)."""
        owners = set(owners)
        if ALL in owners:
            self.forget_all()
            return
        for owner in owners:
            self.forget_owner(int(owner))

    def heard(self, payload: str) -> None:
        """A change notification: an owner's id, or anything else for every owner."""
        if payload.isascii() and payload.isdigit():
            self.forget_owner(int(payload))
        else:
            self.forget_all()

    def _clear(self) -> None:
        self._entries.clear()
        self._keys_of_owner.clear()


@dataclass(eq=False)
class Watch:
    """The tables a kind of cache depends on, and the caches of this process that do.

    `owners` maps an ORM entity class to the owner of a changed instance (None: every
    owner). A bulk UPDATE or DELETE of a watched table forgets the entries of the owner its
    execution option `option` names, or of every owner if it names none.
    """

    name: str
    owners: Mapping[type, Callable[[Any], int | None]]
    tables: frozenset[str]
    option: str
    caches: "weakref.WeakSet[RecentCache[Any, Any]]" = field(default_factory=weakref.WeakSet)

    def __post_init__(self) -> None:
        _WATCHES.append(self)

    def register(self, cache: RecentCache[Any, Any]) -> None:
        self.caches.add(cache)

    def forget(self, owners: set[Owner]) -> None:
        """Apply one transaction's changes to every cache of this process."""
        for cache in list(self.caches):
            cache.forget(owners)

    def owner_of(self, instance: object) -> Owner | None:
        """The owner of a changed entity; None if this watch does not depend on it."""
        for kind, owner in self.owners.items():
            if isinstance(instance, kind):
                found = owner(instance)
                return ALL if found is None else int(found)
        return None

    def note(self, session: Session, owner: int | None) -> None:
        """A statement of `session` changed rows of one owner (of any, with None): forget
        them now, and again when the transaction commits."""
        changed: set[Owner] = {ALL} if owner is None else {int(owner)}
        self._changes_of(session).update(changed)
        self.forget(changed)

    def note_in(self, transaction: Transaction, owner: int) -> None:
        """`note` for a statement of a transaction of direct statements."""
        changed: set[Owner] = {int(owner)}
        self.forget(changed)
        transaction.after_commit(lambda: self.forget(changed))

    def _changes_of(self, session: Session) -> set[Owner]:
        changes: set[Owner] = session.info.setdefault(self.name, set())
        return changes

    def _changes_rows(self, state: ORMExecuteState) -> bool:
        if isinstance(state.statement, TextClause):
            # Plain SQL: assume the worst of any UPDATE or DELETE that names a watched table.
            sql = state.statement.text.lower()
            return bool(_WRITES.search(sql)) and any(name in sql for name in self.tables)
        if not (state.is_update or state.is_delete):
            return False
        return getattr(getattr(state.statement, "table", None), "name", None) in self.tables


_WATCHES: list[Watch] = []


@event.listens_for(Session, "after_flush")
def _note_flushed_changes(session: Session, _context: UOWTransaction) -> None:
    changed = (*session.dirty, *session.deleted)
    for watch in _WATCHES:
        flushed = {owner for item in changed if (owner := watch.owner_of(item)) is not None}
        if flushed:
            watch._changes_of(session).update(flushed)
            watch.forget(flushed)


@event.listens_for(Session, "do_orm_execute")
def _note_bulk_changes(state: ORMExecuteState) -> None:
    for watch in _WATCHES:
        if watch._changes_rows(state):
            # Which rows a bulk statement touches is not known here unless it says so; if
            # not, every entry is forgotten.
            watch.note(state.session, state.execution_options.get(watch.option))


@event.listens_for(Session, "after_commit")
def _forget_committed_changes(session: Session) -> None:
    for watch in _WATCHES:
        changes = session.info.pop(watch.name, None)
        if changes:
            watch.forget(changes)


@event.listens_for(Session, "after_rollback")
def _drop_rolled_back_changes(session: Session) -> None:
    # A rolled-back change was forgotten when it was flushed; it has nothing left to forget.
    for watch in _WATCHES:
        session.info.pop(watch.name, None)
