"""Deadline arithmetic on the natural and the working-day clock."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import chinese_calendar
import pytest

from yijian.calendar import (
    CalendarKind,
    add,
    calendar_covers,
    format_duration,
    is_working_day,
    parse_duration,
    subtract,
)

SH = ZoneInfo("Asia/Shanghai")
NATURAL = CalendarKind.NATURAL
WORKDAY = CalendarKind.WORKDAY


def sh(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=SH)


# --- parse_duration ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("45s", timedelta(seconds=45)),
        ("30m", timedelta(minutes=30)),
        ("2h", timedelta(hours=2)),
        ("3d", timedelta(days=3)),
        ("1d12h", timedelta(days=1, hours=12)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1d2h3m4s", timedelta(days=1, hours=2, minutes=3, seconds=4)),
        ("1h0m", timedelta(hours=1)),
        ("90m", timedelta(minutes=90)),
    ],
)
def test_parse_duration_reads_units_and_combinations(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", 'empty duration ""'),
        ("-1h", 'negative duration "-1h"'),
        ("0s", 'zero duration "0s"'),
        ("0d0h", 'zero duration "0d0h"'),
        ("2x", 'unknown unit in "2x"'),
        ("2H", 'unknown unit in "2H"'),
        ("2hours", 'unknown unit in "2hours"'),
        ("12", 'missing unit in "12"'),
        ("1.5h", 'missing unit in "1.5h"'),
        ("2 h", 'missing unit in "2 h"'),
        ("abc", 'not a duration: "abc"'),
        (" 2h", 'not a duration: " 2h"'),
        ("+2h", 'not a duration: "+2h"'),
        ("２h", 'not a duration: "２h"'),
        ("1h1h", 'unit h repeated or out of order in "1h1h"'),
        ("30m1h", 'unit h repeated or out of order in "30m1h"'),
        ("99999999999d", 'duration too long: "99999999999d"'),
    ],
)
def test_parse_duration_rejects_bad_text_naming_it(text: str, message: str) -> None:
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        parse_duration(text)


def test_format_duration_writes_what_parse_duration_reads() -> None:
    assert format_duration(timedelta(hours=26)) == "1d2h"
    assert format_duration(timedelta(minutes=90, seconds=5)) == "1h30m5s"
    for text in ("45s", "30m", "2h", "3d", "1d12h", "1h30m"):
        assert format_duration(parse_duration(text)) == text
    with pytest.raises(ValueError, match="only positive whole seconds"):
        format_duration(timedelta())


# --- natural clock ----------------------------------------------------------------------------


def test_natural_add_and_subtract_ignore_holidays_and_return_utc() -> None:
    start = sh(2025, 10, 1, 10)  # National Day itself: the natural clock does not care
    end = add(start, timedelta(hours=2), NATURAL)
    assert end == sh(2025, 10, 1, 12)
    assert end.tzinfo is UTC
    back = subtract(end, timedelta(days=3), NATURAL)
    assert back == sh(2025, 9, 28, 12)
    assert back.tzinfo is UTC


# --- working-day clock ------------------------------------------------------------------------


def test_workday_clock_stops_over_national_day_2025() -> None:
    # 2025-10-01..08 are holidays and 10-09 (Thursday) is already a working day, so the hour
    # left after 09-30 midnight is spent on 10-09, not on the 调休 Saturday 10-11.
    end = add(sh(2025, 9, 30, 23), timedelta(hours=2), WORKDAY)
    assert end == sh(2025, 10, 9, 1)
    assert end.tzinfo is UTC


def test_tiaoxiu_saturday_counts_as_a_working_day() -> None:
    assert is_working_day(date(2025, 10, 11))
    assert add(sh(2025, 10, 10, 23), timedelta(hours=2), WORKDAY) == sh(2025, 10, 11, 1)
    # An ordinary Saturday a week later stops the clock until Monday.
    assert add(sh(2025, 10, 17, 23), timedelta(hours=2), WORKDAY) == sh(2025, 10, 20, 1)


def test_three_workdays_from_friday_use_the_tiaoxiu_sunday() -> None:
    # Fri 26th 10:00 → 14h that day, Sat 27th off, Sun 28th (调休) and Mon 29th 24h each,
    # leaving 10h on Tue 30th.
    assert add(sh(2025, 9, 26, 10), timedelta(days=3), WORKDAY) == sh(2025, 9, 30, 10)


def test_start_inside_a_holiday_counts_from_next_working_day_midnight() -> None:
    assert add(sh(2025, 10, 3, 15), timedelta(hours=1), WORKDAY) == sh(2025, 10, 9, 1)
    assert add(sh(2025, 10, 12, 15), timedelta(minutes=30), WORKDAY) == sh(2025, 10, 13, 0, 30)


def test_span_filling_a_working_day_ends_at_its_midnight() -> None:
    # The earliest instant the time is used up, not the next working day's start.
    assert add(sh(2025, 9, 30), timedelta(days=1), WORKDAY) == sh(2025, 10, 1)


def test_zero_span_is_the_start_itself_and_negative_is_rejected() -> None:
    holiday = sh(2025, 10, 3, 15)
    assert add(holiday, timedelta(), WORKDAY) == holiday
    assert subtract(holiday, timedelta(), WORKDAY) == holiday
    with pytest.raises(ValueError, match="must not be negative"):
        add(holiday, timedelta(hours=-1), WORKDAY)
    with pytest.raises(ValueError, match="must not be negative"):
        subtract(holiday, timedelta(hours=-1), NATURAL)


@pytest.mark.parametrize("kind", list(CalendarKind))
def test_naive_datetimes_are_rejected(kind: CalendarKind) -> None:
    with pytest.raises(ValueError, match="start must be timezone-aware"):
        add(datetime(2025, 9, 30, 23), timedelta(hours=1), kind)
    with pytest.raises(ValueError, match="end must be timezone-aware"):
        subtract(datetime(2025, 9, 30, 23), timedelta(hours=1), kind)


def test_any_timezone_is_read_as_the_same_instant() -> None:
    # 15:00 UTC on 09-30 is 23:00 in Shanghai, the eve of the holiday.
    start = datetime(2025, 9, 30, 15, tzinfo=UTC)
    assert add(start, timedelta(hours=2), WORKDAY) == sh(2025, 10, 9, 1)


def test_long_spans_count_every_working_day_of_a_year() -> None:
    days = len(chinese_calendar.get_workdays(date(2025, 1, 1), date(2025, 12, 31)))
    assert days == 248
    # 2025-12-31 is a Wednesday and a working day, so the year's working time ends at its end.
    assert add(sh(2025, 1, 1), timedelta(days=days), WORKDAY) == sh(2026, 1, 1)
    # New Year's Day is a holiday, so the latest instant with that much working time ahead is
    # the start of 01-02, the year's first working day.
    assert subtract(sh(2026, 1, 1), timedelta(days=days), WORKDAY) == sh(2025, 1, 2)


# --- subtract mirrors add ---------------------------------------------------------------------


def test_subtract_is_measured_in_working_time() -> None:
    # A reminder 30 min before a deadline just after the holiday falls before the holiday.
    assert subtract(sh(2025, 10, 9, 0, 10), timedelta(minutes=30), WORKDAY) == sh(
        2025, 9, 30, 23, 40
    )
    # An end inside a holiday counts back from the last working day's midnight.
    assert subtract(sh(2025, 10, 5, 12), timedelta(minutes=30), WORKDAY) == sh(2025, 9, 30, 23, 30)
    assert subtract(sh(2025, 9, 30, 10), timedelta(days=3), WORKDAY) == sh(2025, 9, 26, 10)


@pytest.mark.parametrize("span", ["30m", "2h", "1d", "3d", "5d12h"])
def test_subtract_undoes_add_in_working_time(span: str) -> None:
    length = parse_duration(span)
    moment = sh(2025, 9, 20, 0, 30)
    checked = 0
    while moment < sh(2025, 10, 20):
        if is_working_day(moment.date()):
            assert subtract(add(moment, length, WORKDAY), length, WORKDAY) == moment
            assert add(subtract(moment, length, WORKDAY), length, WORKDAY) == moment
            checked += 1
        moment += timedelta(hours=5)
    assert checked > 60


# --- years the package has no data for --------------------------------------------------------


def test_calendar_covers_reports_the_package_range() -> None:
    assert calendar_covers(2004)
    assert calendar_covers(2025)
    assert calendar_covers(2026)
    assert not calendar_covers(2003)
    assert not calendar_covers(2027)
    assert not calendar_covers(0)


def test_uncovered_years_fall_back_to_monday_to_friday() -> None:
    # 2027-01-01 will surely be a holiday, but without data only weekends stop the clock.
    assert is_working_day(date(2027, 1, 1))
    assert not is_working_day(date(2027, 1, 2))
    assert not is_working_day(date(2027, 1, 3))
    assert add(sh(2027, 1, 1, 23), timedelta(hours=2), WORKDAY) == sh(2027, 1, 4, 1)
    # Crossing from covered 2026 into uncovered 2027 keeps counting.
    assert add(sh(2026, 12, 31, 23), timedelta(hours=2), WORKDAY) == sh(2027, 1, 1, 1)
    assert subtract(sh(2027, 1, 4, 1), timedelta(hours=2), WORKDAY) == sh(2027, 1, 1, 23)
