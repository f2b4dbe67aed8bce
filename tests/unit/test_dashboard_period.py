"""The dashboard's period and scope rules: Beijing days, sane defaults, clear refusals."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from services.routing.dashboard_scope import BEIJING, Period, Scope
from yijian.jurisdiction import Jurisdiction

# 2026-03-02 23:30 in Beijing is still 15:30 UTC: the Beijing day is what counts.
LATE_MONDAY = datetime(2026, 3, 2, 15, 30, tzinfo=UTC)


def test_the_default_is_the_thirty_beijing_days_ending_today() -> None:
    period = Period.of(None, None, LATE_MONDAY)
    assert period.since == datetime(2026, 2, 1, tzinfo=BEIJING)
    assert period.until == datetime(2026, 3, 3, tzinfo=BEIJING)
    days = period.days()
    assert len(days) == 30
    assert (days[0], days[-1]) == (date(2026, 2, 1), date(2026, 3, 2))


def test_after_midnight_in_beijing_today_is_the_next_day() -> None:
    period = Period.of(None, None, LATE_MONDAY + timedelta(minutes=30))  # 00:00 Tuesday
    assert period.days()[-1] == date(2026, 3, 3)


def test_an_explicit_period_covers_the_days_it_touches() -> None:
    since = datetime(2026, 3, 1, 12, 0, tzinfo=BEIJING)
    until = datetime(2026, 3, 3, 0, 0, tzinfo=BEIJING)  # exclusive: Mar 3 is not touched
    assert Period.of(since, until, LATE_MONDAY).days() == [date(2026, 3, 1), date(2026, 3, 2)]


def test_only_an_end_gives_the_thirty_days_before_it() -> None:
    until = datetime(2026, 1, 1, tzinfo=BEIJING)
    period = Period.of(None, until, LATE_MONDAY)
    assert period.days()[0] == date(2025, 12, 2)
    assert period.days()[-1] == date(2025, 12, 31)


@pytest.mark.parametrize(
    ("since", "until", "reason"),
    [
        (datetime(2026, 3, 1), None, "timezone"),
        (datetime(2026, 3, 2, tzinfo=UTC), datetime(2026, 3, 2, tzinfo=UTC), "before"),
        (datetime(2024, 1, 1, tzinfo=UTC), datetime(2025, 1, 2, tzinfo=UTC), "366"),
    ],
)
def test_bad_periods_are_refused_with_a_reason(
    since: datetime, until: datetime | None, reason: str
) -> None:
    with pytest.raises(ValueError, match=reason):
        Period.of(since, until, LATE_MONDAY)


def test_scopes_break_down_into_the_places_below() -> None:
    places = Jurisdiction.load()
    county = Scope.of(places, places.county.code)
    assert len(county.townships()) == 15
    assert county.villages() == []
    township = places.townships()[2]
    one_township = Scope.of(places, township.code)
    assert [t.code for t in one_township.townships()] == [township.code]
    assert one_township.villages() == places.villages(township.code)
    village = places.villages(township.code)[0]
    one_village = Scope.of(places, village.code)
    assert (one_village.township_code, one_village.village_code) == (township.code, village.code)
    assert [v.code for v in one_village.villages()] == [village.code]
    with pytest.raises(ValueError, match="grid"):
        Scope.of(places, places.grids(village.code)[0].code)
    with pytest.raises(ValueError, match="unknown"):
        Scope.of(places, "620922999")
