"""One clock for the whole system, so tests move time instead of sleeping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, timezone-aware, in UTC."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FakeClock:
    """A clock that only moves when a test moves it."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
        if self._now.tzinfo is None:
            raise ValueError("FakeClock needs a timezone-aware start")

    def now(self) -> datetime:
        return self._now

    def advance(self, span: timedelta) -> datetime:
        self._now += span
        return self._now

    def set(self, instant: datetime) -> None:
        if instant.tzinfo is None:
            raise ValueError("FakeClock needs a timezone-aware instant")
        self._now = instant


class FileClock:
    """Reads the time from a file: lets a test move time for several processes at once.

    Only for end-to-end tests of the production shape (``YIJIAN_CLOCK_FILE``); a service
    started with it logs a warning. The file holds one ISO 8601 instant with its offset.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self.now()  # fail at start, not at the first deadline, if the file is wrong

    def now(self) -> datetime:
        instant = datetime.fromisoformat(self._path.read_text(encoding="utf-8").strip())
        if instant.tzinfo is None:
            raise ValueError(f"{self._path} must hold a timezone-aware instant")
        return instant.astimezone(UTC)
