"""The simulator's report: the system's own figures for the run, as a table or as JSON.

Received, resolved, escalations and on-time rates are the county platform's statistics
(``GET /api/v1/stats``), exactly what the dashboard would show for the simulated period.
The statistics keep no reminders and no resolve times, so those two come from the system's
events (``complaint.reminded``, ``complaint.submitted`` and ``complaint.resolved``).
"""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from services.simulator.scenario import Scenario
from yijian.calendar import SHANGHAI
from yijian.level import Level

HOUR = 3600.0


@dataclass
class Heard:
    """What the system announced on its event log, as the simulator heard it."""

    submitted_at: dict[str, datetime] = field(default_factory=dict)
    # Per resolution: the level accountable when it was resolved, and how long it took.
    resolutions: list[tuple[Level, timedelta]] = field(default_factory=list)
    reminders: Counter[Level] = field(default_factory=Counter)


@dataclass(frozen=True)
class Run:
    submitted: int  # complaints intake answered 201 to
    refused_steps: int  # staff steps the system refused (the case had moved on)
    settles: int  # times the system was run to a standstill
    wall_seconds: float


@dataclass(frozen=True)
class LevelReport:
    level: str
    received: int
    resolved: int
    share_of_resolved: float | None
    on_time_rate: float | None  # of this level's resolutions, within its own deadlines
    escalated_up: int
    reminders: int
    mean_hours_to_accept: float | None
    median_hours_to_resolve: float | None  # from submission, for what this level resolved


@dataclass(frozen=True)
class Report:
    scenario: str
    policy: str
    seed: int
    days: int
    follow_days: int
    start: str
    received: int
    resolved: int
    open: int
    resolution_rate: float | None
    share_resolved_at_village: float | None
    escalations_to_township: int
    escalations_to_county: int
    reminders: int
    on_time_rate: float | None  # of resolved complaints, the share that missed no deadline
    median_hours_to_resolve: float | None
    levels: list[LevelReport]
    run: Run

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def _median_hours(spans: list[timedelta]) -> float | None:
    if not spans:
        return None
    return round(statistics.median(span.total_seconds() for span in spans) / HOUR, 1)


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def report(
    scenario: Scenario, policy: str, stats: dict[str, Any], heard: Heard, run: Run
) -> Report:
    by_level = {entry["level"]: entry for entry in stats["levels"]}
    resolutions = sum(int(entry["resolved"]) for entry in stats["levels"])
    levels = []
    for level in Level:
        entry = by_level[level.value]
        accept = entry["mean_time_to_accept_seconds"]
        levels.append(
            LevelReport(
                level=level.value,
                received=entry["received"],
                resolved=entry["resolved"],
                share_of_resolved=_share(entry["resolved"], resolutions),
                on_time_rate=entry["on_time_rate"],
                escalated_up=entry["escalations"],
                reminders=heard.reminders[level],
                mean_hours_to_accept=None if accept is None else round(accept / HOUR, 2),
                median_hours_to_resolve=_median_hours(
                    [span for at, span in heard.resolutions if at == level]
                ),
            )
        )
    return Report(
        scenario=scenario.name,
        policy=policy,
        seed=scenario.seed,
        days=scenario.days,
        follow_days=scenario.follow_days,
        start=scenario.start.isoformat(),
        received=stats["received"],
        resolved=stats["resolved"],
        open=stats["received"] - stats["resolved"],
        resolution_rate=stats["resolution_rate"],
        share_resolved_at_village=stats["share_resolved_at_village"],
        escalations_to_township=by_level[Level.VILLAGE.value]["escalations"],
        escalations_to_county=by_level[Level.TOWNSHIP.value]["escalations"],
        reminders=sum(heard.reminders.values()),
        on_time_rate=stats["on_time_rate"],
        median_hours_to_resolve=_median_hours([span for _, span in heard.resolutions]),
        levels=levels,
        run=run,
    )


def _percent(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:.1%}"


def _hours(hours: float | None) -> str:
    return "-" if hours is None else f"{hours:.1f} h"


def render(result: Report) -> str:
    """The report as a terminal table (level names in English, so the columns line up)."""
    start = datetime.fromisoformat(result.start).astimezone(SHANGHAI)
    followed = f", followed {result.follow_days} more" if result.follow_days else ""
    lines = [
        f"{result.scenario}: {result.days} day(s) of arrivals from {start:%Y-%m-%d %H:%M} "
        f"Beijing time{followed}; seed {result.seed}",
        f"policy: {result.policy}",
        "",
        f"complaints           {result.received:>6}   resolved {result.resolved} "
        f"({_percent(result.resolution_rate)}), still open {result.open}",
        f"escalations          to township (督办) {result.escalations_to_township}, "
        f"to county {result.escalations_to_county}",
        f"reminders (催办)     {result.reminders:>6}",
        f"resolved at village  {_percent(result.share_resolved_at_village):>6}   of resolutions",
        f"on time              {_percent(result.on_time_rate):>6}   of resolved complaints "
        "missed no deadline",
        f"median to resolve    {_hours(result.median_hours_to_resolve):>8}",
        "",
        f"{'level':<9}{'received':>9}{'resolved':>9}{'share':>8}{'on time':>9}"
        f"{'escalated':>10}{'reminders':>10}{'accept':>9}{'resolve':>9}",
    ]
    for level in result.levels:
        lines.append(
            f"{level.level:<9}{level.received:>9}{level.resolved:>9}"
            f"{_percent(level.share_of_resolved):>8}{_percent(level.on_time_rate):>9}"
            f"{level.escalated_up:>10}{level.reminders:>10}"
            f"{_hours(level.mean_hours_to_accept):>9}{_hours(level.median_hours_to_resolve):>9}"
        )
    lines += [
        "",
        "share: of all resolutions; on time: within the level's own deadlines; escalated: up "
        "to the next level;",
        "accept: mean wait to 签收 at the level; resolve: median from submission, for what "
        "the level resolved.",
        f"({result.run.submitted} submitted, {result.run.refused_steps} staff steps refused, "
        f"{result.run.settles} settles, {result.run.wall_seconds:.1f} s)",
    ]
    return "\n".join(lines)
