"""Deadline arithmetic: durations, natural time and working-day time.

Two clocks exist. The NATURAL clock is plain elapsed time. The WORKDAY clock only runs on
China's working days, judged in Shanghai local time: a working day contributes its whole 24
hours, weekends and public holidays contribute nothing, and 调休 make-up days (a Saturday or
Sunday declared a working day) count like any weekday.

Working days come from the ``chinesecalendar`` package, which only knows the years the State
Council has announced (2004–2026 for v1.11.0). For any other year we fall back to Monday–Friday,
so deadlines keep moving instead of failing; ``calendar_covers(year)`` tells callers whether a
year is on that fallback, so they can warn an operator that the package needs an upgrade.

Deadlines are defined as extremes, which makes ``add`` and ``subtract`` exact mirrors:

* ``add(start, span)`` is the *earliest* instant ``t >= start`` such that ``span`` of clock time
  lies in ``[start, t]``. A start inside a non-working day therefore counts from the next working
  day's 00:00, and a span that exactly fills a working day ends at that day's 24:00 (not at the
  next working day's 00:00).
* ``subtract(end, span)`` is the *latest* instant ``t <= end`` such that ``span`` of clock time
  lies in ``[t, end]``.

For any ``t`` the WORKDAY clock is running at, ``subtract(add(t, s), s) == t``.
"""

from __future__ import annotations

import re
from datetime import MAXYEAR, MINYEAR, UTC, date, datetime, time, timedelta
from enum import StrEnum
from functools import lru_cache
from zoneinfo import ZoneInfo

import chinese_calendar

__all__ = [
    "SHANGHAI",
    "CalendarKind",
    "add",
    "calendar_covers",
    "format_duration",
    "is_working_day",
    "parse_duration",
    "subtract",
]

SHANGHAI = ZoneInfo("Asia/Shanghai")

_UNITS: dict[str, timedelta] = {
    "d": timedelta(days=1),
    "h": timedelta(hours=1),
    "m": timedelta(minutes=1),
    "s": timedelta(seconds=1),
}
_PART = re.compile(r"([0-9]+)([A-Za-z]*)")


class CalendarKind(StrEnum):
    NATURAL = "natural"
    WORKDAY = "workday"


def parse_duration(text: str) -> timedelta:
    """Read a duration like ``"45s"``, ``"30m"``, ``"2h"``, ``"3d"``, ``"1d12h"`` or ``"1h30m"``.

    Units must appear at most once each and from largest to smallest, so a typo such as
    ``"1h1h"`` or ``"30m2h"`` is caught rather than silently summed. Every duration in the SLA
    policy is a deadline, a lead time or a repeat interval, and none of those makes sense as
    zero (a zero repeat would re-fire forever), so a total of zero is rejected; ``"1h0m"`` is
    fine because its total is not zero.
    """
    if not text:
        raise ValueError('empty duration ""')
    if text.startswith("-"):
        raise ValueError(f'negative duration "{text}"')
    total = timedelta()
    position = 0
    seen: list[str] = []
    while position < len(text):
        match = _PART.match(text, position)
        if match is None:
            raise ValueError(f'not a duration: "{text}" (expected e.g. "2h", "3d", "1h30m")')
        amount, unit = match.groups()
        if not unit:
            raise ValueError(f'missing unit in "{text}" (use d, h, m or s)')
        if unit not in _UNITS:
            raise ValueError(f'unknown unit in "{text}" (use d, h, m or s)')
        if seen and list(_UNITS).index(unit) <= list(_UNITS).index(seen[-1]):
            raise ValueError(f'unit {unit} repeated or out of order in "{text}"')
        seen.append(unit)
        try:
            total += int(amount) * _UNITS[unit]
        except OverflowError:
            raise ValueError(f'duration too long: "{text}"') from None
        position = match.end()
    if total <= timedelta():
        raise ValueError(f'zero duration "{text}"')
    return total


def format_duration(span: timedelta) -> str:
    """Write a duration the way ``parse_duration`` reads it, e.g. ``timedelta(hours=26)`` → 1d2h."""
    seconds = int(span.total_seconds())
    if seconds <= 0 or span != timedelta(seconds=seconds):
        raise ValueError(f"cannot format {span!r}: only positive whole seconds")
    parts: list[str] = []
    for unit, size in _UNITS.items():
        count, seconds = divmod(seconds, int(size.total_seconds()))
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


@lru_cache(maxsize=256)
def calendar_covers(year: int) -> bool:
    """True when ``chinesecalendar`` has the official holiday schedule for ``year``.

    For uncovered years ``is_working_day`` uses Monday–Friday only, which misses public
    holidays and 调休 days; callers should surface that to whoever maintains the deployment.
    """
    if not MINYEAR <= year <= MAXYEAR:
        return False
    try:
        chinese_calendar.is_workday(date(year, 1, 1))
    except NotImplementedError:
        return False
    return True


# Cached: the answer for a day never changes while the process runs, and ``chinese_calendar``
# validates its argument and searches its tables each time, a fifth of the CPU escalation
# spent planning a complaint's deadlines. A few thousand days fill the cache in a decade.
@lru_cache(maxsize=8192)
def is_working_day(day: date) -> bool:
    """Whether the WORKDAY clock runs on ``day`` (a Shanghai calendar date)."""
    if calendar_covers(day.year):
        return bool(chinese_calendar.is_workday(day))
    return day.weekday() < 5


def add(start: datetime, span: timedelta, kind: CalendarKind) -> datetime:
    """The instant ``span`` of ``kind`` clock time after ``start``, in UTC."""
    moment = _to_utc(start, "start")
    _check_span(span)
    if kind is CalendarKind.NATURAL:
        return moment + span
    if not span:
        return moment
    remaining = span
    day = moment.astimezone(SHANGHAI).date()
    while True:
        opens, closes = _day_bounds(day)
        if is_working_day(day):
            begin = max(moment, opens)
            available = closes - begin
            if remaining <= available:
                return begin + remaining
            remaining -= available
        day += timedelta(days=1)


def subtract(end: datetime, span: timedelta, kind: CalendarKind) -> datetime:
    """The instant ``span`` of ``kind`` clock time before ``end``, in UTC.

    Used for reminders ("催办 30 minutes before the deadline"), which must be measured on the
    same clock as the deadline or they would land in a holiday before the clock even stops.
    """
    moment = _to_utc(end, "end")
    _check_span(span)
    if kind is CalendarKind.NATURAL:
        return moment - span
    if not span:
        return moment
    remaining = span
    day = moment.astimezone(SHANGHAI).date()
    while True:
        opens, closes = _day_bounds(day)
        if is_working_day(day):
            finish = min(moment, closes)
            available = finish - opens
            if remaining <= available:
                return finish - remaining
            remaining -= available
        day -= timedelta(days=1)


def _to_utc(moment: datetime, name: str) -> datetime:
    # A naive datetime would be read in the server's zone, which is exactly the silent
    # eight-hour error this module exists to prevent.
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {moment.isoformat()}")
    return moment.astimezone(UTC)


def _check_span(span: timedelta) -> None:
    if span < timedelta():
        raise ValueError(f"span must not be negative, got {span!r}")


def _day_bounds(day: date) -> tuple[datetime, datetime]:
    # Bounds come from the zone rather than "midnight + 24h" so the arithmetic stays right
    # for historical dates when Shanghai observed daylight saving (1986–1991).
    opens = datetime.combine(day, time(), tzinfo=SHANGHAI).astimezone(UTC)
    closes = datetime.combine(day + timedelta(days=1), time(), tzinfo=SHANGHAI).astimezone(UTC)
    return opens, closes
