"""What a set of figures covers: a place (the scope) and a span of time (the period).

Also the two bits of SQL that differ between SQLite and PostgreSQL: seconds between two
instants, and the Beijing calendar day of an instant.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone

from sqlalchemy import ColumnElement, Float, String, cast, extract, func, literal_column, true
from sqlalchemy.sql.elements import KeyedColumnElement

from yijian.jurisdiction import Jurisdiction, Org, OrgKind

# China keeps one offset all year (no daylight saving since 1991), so a fixed zone is exact.
BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")
DEFAULT_DAYS = 30
MAX_DAYS = 366


def ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def seconds_between(
    start: KeyedColumnElement[datetime], end: KeyedColumnElement[datetime], dialect: str
) -> ColumnElement[float]:
    """``end - start`` in seconds, as SQL."""
    if dialect == "sqlite":
        # Timestamps are stored as UTC text; julianday keeps millisecond precision.
        return (func.julianday(end) - func.julianday(start)) * 86400.0
    return cast(extract("epoch", end - start), Float)


def beijing_day(instant: KeyedColumnElement[datetime], dialect: str) -> ColumnElement[str]:
    """The Beijing calendar date of an instant as ``YYYY-MM-DD``, as SQL."""
    if dialect == "sqlite":
        return cast(func.date(instant, literal_column("'+8 hours'")), String)
    # Constants inline, not bound: PostgreSQL matches a GROUP BY expression to the selected
    # one textually, and two bound parameters never look the same.
    return func.to_char(
        func.timezone(literal_column("'Asia/Shanghai'"), instant),
        literal_column("'YYYY-MM-DD'"),
    )


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), BEIJING)


@dataclass(frozen=True)
class Period:
    """Instants ``since`` (inclusive) to ``until`` (exclusive), at most a year apart."""

    since: datetime
    until: datetime

    @classmethod
    def of(cls, since: datetime | None, until: datetime | None, now: datetime) -> Period:
        """The asked-for period; by default the 30 Beijing days that end with today.

        Raises ValueError with a reason a person can act on.
        """
        for bound in (since, until):
            if bound is not None and bound.tzinfo is None:
                raise ValueError("from/to need a timezone, e.g. 2026-03-01T00:00:00+08:00")
        # By default up to the end of today, so what happened this very instant counts too.
        end = until or _midnight(now.astimezone(BEIJING).date() + timedelta(days=1))
        if since is None:
            last_day = (end - timedelta(microseconds=1)).astimezone(BEIJING).date()
            since = _midnight(last_day - timedelta(days=DEFAULT_DAYS - 1))
        if since >= end:
            raise ValueError("from must be before to")
        if end - since > timedelta(days=MAX_DAYS):
            raise ValueError(f"a period spans at most {MAX_DAYS} days")
        return cls(since, end)

    def days(self) -> list[date]:
        """Every Beijing calendar day the period touches, in order."""
        first = self.since.astimezone(BEIJING).date()
        last = (self.until - timedelta(microseconds=1)).astimezone(BEIJING).date()
        return [first + timedelta(days=n) for n in range((last - first).days + 1)]


@dataclass(frozen=True)
class Scope:
    """The county, one township or one village: whose complaints the figures count."""

    org: Org
    township_code: str | None
    village_code: str | None
    jurisdiction: Jurisdiction = field(repr=False, compare=False)

    @classmethod
    def of(cls, jurisdiction: Jurisdiction, code: str) -> Scope:
        org = jurisdiction.get(code)
        if org is None:
            raise ValueError(f"unknown org code {code!r}")
        if org.kind == OrgKind.COUNTY:
            return cls(org, None, None, jurisdiction)
        if org.kind == OrgKind.TOWNSHIP:
            return cls(org, org.code, None, jurisdiction)
        if org.kind == OrgKind.VILLAGE:
            return cls(org, org.parent_code, org.code, jurisdiction)
        raise ValueError("figures are kept per village, township or county, not per grid")

    def where(
        self, township: KeyedColumnElement[str | None], village: KeyedColumnElement[str | None]
    ) -> ColumnElement[bool]:
        """The SQL condition on a table's place columns."""
        if self.village_code is not None:
            return village == self.village_code
        if self.township_code is not None:
            return township == self.township_code
        return true()

    def townships(self) -> list[Org]:
        """The townships the figures break down into: all 15 for the county, else one."""
        if self.township_code is None:
            return self.jurisdiction.townships()
        township = self.jurisdiction.get(self.township_code)
        return [township] if township is not None else []

    def villages(self) -> list[Org]:
        """A township's villages (its own breakdown); one village for a village; none above."""
        if self.village_code is not None:
            return [self.org]
        if self.township_code is not None:
            return self.jurisdiction.villages(self.township_code)
        return []
