"""The per-level figures the county reviews (考核): what each level received and finished.

A period selects the complaints that reached a level inside it, and follows them to where
they stand now (a cohort: "of what came in during March, how much is resolved").

- Per level, counted from level stints: a complaint that climbed from village to township
  counts as received once at each level, escalated once at the village, and resolved at the
  level that was accountable when it was resolved. A level's ``on_time_rate`` is the share
  of its resolutions within its *own* deadlines (a township that resolves in time what a
  village let lapse did its part on time).
- Per place (township, village) and for the whole scope, counted in complaints, from the
  case: resolved while it stands resolved or archived (one the citizen sent back is open
  again), on time when it missed *no* deadline on the way — what the citizen saw, the same
  test as ``complaint.resolved``'s ``on_time`` — and the citizens' latest ratings.

Everything is counted by ``GROUP BY`` in the database, never row by row in Python: a
complaint stays in the place it was filed, so per-village counts add up exactly to
townships and to the county.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, and_, case, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from services.routing.dashboard_scope import Period, Scope, ratio, seconds_between
from services.routing.store import cases, level_stints
from yijian.level import Level

RATINGS = ("satisfied", "basically_satisfied", "unsatisfied")  # 满意, 基本满意, 不满意
SATISFIED = RATINGS[:2]  # the review counts 满意 and 基本满意 as satisfied
_RESOLVED = level_stints.c.outcome == "resolved"
_ESCALATED = level_stints.c.outcome == "escalated"


@dataclass(frozen=True)
class LevelFigures:
    level: Level
    received: int
    resolved: int
    resolution_rate: float | None
    on_time_rate: float | None
    escalations: int
    mean_time_to_accept_seconds: float | None


@dataclass(frozen=True)
class Satisfaction:
    rated: int
    counts: dict[str, int]
    satisfied_rate: float | None


@dataclass(frozen=True)
class UnitFigures:
    """One township's or village's figures: complaints filed there, whoever handled them."""

    code: str
    name: str
    received: int
    resolved: int
    resolution_rate: float | None
    escalations: int
    on_time_rate: float | None
    satisfied_rate: float | None
    levels: list[LevelFigures]


@dataclass(frozen=True)
class Figures:
    levels: list[LevelFigures]
    received: int
    resolved: int
    share_resolved_at_village: float | None
    resolution_rate: float | None = None
    on_time_rate: float | None = None
    escalations: int = 0
    satisfaction: Satisfaction | None = None
    by_township: list[UnitFigures] = field(default_factory=list)
    by_village: list[UnitFigures] = field(default_factory=list)


@dataclass
class _Stints:
    """Sums over level stints; they add up across places."""

    received: int = 0
    resolved: int = 0
    on_time: int = 0
    escalations: int = 0
    accepted: int = 0
    wait_seconds: float = 0.0

    def add(self, other: _Stints) -> None:
        self.received += other.received
        self.resolved += other.resolved
        self.on_time += other.on_time
        self.escalations += other.escalations
        self.accepted += other.accepted
        self.wait_seconds += other.wait_seconds

    def figures(self, level: Level) -> LevelFigures:
        return LevelFigures(
            level=level,
            received=self.received,
            resolved=self.resolved,
            resolution_rate=ratio(self.resolved, self.received),
            on_time_rate=ratio(self.on_time, self.resolved),
            escalations=self.escalations,
            mean_time_to_accept_seconds=round(self.wait_seconds / self.accepted, 1)
            if self.accepted
            else None,
        )


@dataclass
class _Complaints:
    """Counts of complaints; they add up across places because a complaint has one place."""

    received: int = 0
    resolved: int = 0
    on_time: int = 0
    ratings: dict[str, int] = field(default_factory=lambda: dict.fromkeys(RATINGS, 0))

    def add(self, other: _Complaints) -> None:
        self.received += other.received
        self.resolved += other.resolved
        self.on_time += other.on_time
        for rating, count in other.ratings.items():
            self.ratings[rating] += count

    def satisfaction(self) -> Satisfaction:
        rated = sum(self.ratings.values())
        satisfied = sum(self.ratings[rating] for rating in SATISFIED)
        return Satisfaction(rated, dict(self.ratings), ratio(satisfied, rated))


_Place = tuple[str | None, str | None]  # (township code, village code)


@dataclass
class _Tallies:
    stints: dict[tuple[str | None, str | None, str], _Stints]
    complaints: dict[_Place, _Complaints]

    def level(
        self, level: Level, township: str | None = None, village: str | None = None
    ) -> _Stints:
        total = _Stints()
        for (t, v, lv), sums in self.stints.items():
            if lv == level.value and _inside(t, v, township, village):
                total.add(sums)
        return total

    def distinct(self, township: str | None = None, village: str | None = None) -> _Complaints:
        total = _Complaints()
        for (t, v), counts in self.complaints.items():
            if _inside(t, v, township, village):
                total.add(counts)
        return total

    def unit(self, code: str, name: str, township: str | None, village: str | None) -> UnitFigures:
        levels = [self.level(level, township, village).figures(level) for level in Level]
        complaints = self.distinct(township, village)
        return UnitFigures(
            code=code,
            name=name,
            received=complaints.received,
            resolved=complaints.resolved,
            resolution_rate=ratio(complaints.resolved, complaints.received),
            escalations=sum(figure.escalations for figure in levels),
            on_time_rate=ratio(complaints.on_time, complaints.resolved),
            satisfied_rate=complaints.satisfaction().satisfied_rate,
            levels=levels,
        )


def _inside(t: str | None, v: str | None, township: str | None, village: str | None) -> bool:
    return (township is None or t == township) and (village is None or v == village)


async def _tally(connection: AsyncConnection, where: ColumnElement[bool]) -> _Tallies:
    """Two grouped queries: per place and level over stints, per place over complaints."""
    dialect = connection.dialect.name
    stint = level_stints.c
    accepted = stint.accepted_at.is_not(None)
    per_level = await connection.execute(
        select(
            stint.township_code,
            stint.village_code,
            stint.level,
            func.count(),
            func.sum(case((_RESOLVED, 1), else_=0)),
            func.sum(case((and_(_RESOLVED, ~stint.missed), 1), else_=0)),
            func.sum(case((_ESCALATED, 1), else_=0)),
            func.count(stint.accepted_at),
            func.sum(
                case((accepted, seconds_between(stint.entered_at, stint.accepted_at, dialect)))
            ),
        )
        .where(where)
        .group_by(stint.township_code, stint.village_code, stint.level)
    )
    stints = {
        (row[0], row[1], row[2]): _Stints(
            received=int(row[3]),
            resolved=int(row[4] or 0),
            on_time=int(row[5] or 0),
            escalations=int(row[6] or 0),
            accepted=int(row[7] or 0),
            wait_seconds=float(row[8] or 0),
        )
        for row in per_level
    }

    # The complaints of the period, once each, joined to their case for where they stand.
    cohort = (
        select(stint.complaint_id, stint.township_code, stint.village_code)
        .where(where)
        .group_by(stint.complaint_id, stint.township_code, stint.village_code)
        .subquery("cohort")
    )
    done = cases.c.status.in_(["resolved", "closed"])
    per_place = await connection.execute(
        select(
            cohort.c.township_code,
            cohort.c.village_code,
            func.count(),
            func.sum(case((done, 1), else_=0)),
            func.sum(case((and_(done, cases.c.missed_deadlines == 0), 1), else_=0)),
            *(func.sum(case((cases.c.rating == rating, 1), else_=0)) for rating in RATINGS),
        )
        .select_from(cohort.join(cases, cases.c.complaint_id == cohort.c.complaint_id))
        .group_by(cohort.c.township_code, cohort.c.village_code)
    )
    complaints = {
        (row[0], row[1]): _Complaints(
            received=int(row[2]),
            resolved=int(row[3] or 0),
            on_time=int(row[4] or 0),
            ratings={rating: int(row[5 + n] or 0) for n, rating in enumerate(RATINGS)},
        )
        for row in per_place
    }
    return _Tallies(stints, complaints)


async def figures(connection: AsyncConnection, scope: Scope, period: Period) -> Figures:
    where = and_(
        scope.where(level_stints.c.township_code, level_stints.c.village_code),
        level_stints.c.entered_at >= period.since,
        level_stints.c.entered_at < period.until,
    )
    tallies = await _tally(connection, where)
    levels = [tallies.level(level).figures(level) for level in Level]
    complaints = tallies.distinct()
    resolutions = sum(figure.resolved for figure in levels)
    return Figures(
        levels=levels,
        received=complaints.received,
        resolved=complaints.resolved,
        share_resolved_at_village=ratio(levels[0].resolved, resolutions),
        resolution_rate=ratio(complaints.resolved, complaints.received),
        on_time_rate=ratio(complaints.on_time, complaints.resolved),
        escalations=sum(figure.escalations for figure in levels),
        satisfaction=complaints.satisfaction(),
        by_township=[
            tallies.unit(township.code, township.name, township.code, scope.village_code)
            for township in scope.townships()
        ],
        by_village=[
            tallies.unit(village.code, village.name, scope.township_code, village.code)
            for village in scope.villages()
        ],
    )
