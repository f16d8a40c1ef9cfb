"""The one source of "now", so tests can move time without sleeping."""

from datetime import UTC, datetime, timedelta


class Clock:
    """Wall-clock time in UTC, with an offset tests may shift."""

    def __init__(self) -> None:
        self._offset = timedelta()

    def now(self) -> datetime:
        return datetime.now(UTC) + self._offset

    def advance(self, delta: timedelta) -> None:
        self._offset += delta

    def reset(self) -> None:
        self._offset = timedelta()


clock = Clock()


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return clock.now()
