"""The per-level figures the county reviews (考核): what each level received and finished.

Counted from level stints: a complaint that climbed from village to township counts as
received once at each level, escalated once at the village, and resolved at the level that
was accountable when it was resolved.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, and_, case, func, select, true
from sqlalchemy.ext.asyncio import AsyncConnection

from services.routing.store import level_stints
from yijian.jurisdiction import Jurisdiction, OrgKind
from yijian.level import Level


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
class Figures:
    levels: list[LevelFigures]
    received: int
    resolved: int
    share_resolved_at_village: float | None


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def org_filter(jurisdiction: Jurisdiction, org_code: str | None) -> ColumnElement[bool]:
    if org_code is None:
        return true()
    org = jurisdiction.get(org_code)
    if org is None:
        raise ValueError(f"unknown org code {org_code!r}")
    if org.kind == OrgKind.TOWNSHIP:
        return level_stints.c.township_code == org.code
    if org.kind == OrgKind.VILLAGE:
        return level_stints.c.village_code == org.code
    if org.kind == OrgKind.COUNTY:
        return true()
    raise ValueError("figures are kept per village, township or county, not per grid")


async def figures(
    connection: AsyncConnection,
    where_org: ColumnElement[bool],
    since: datetime | None,
    until: datetime | None,
) -> Figures:
    conditions = [where_org]
    if since is not None:
        conditions.append(level_stints.c.entered_at >= since)
    if until is not None:
        conditions.append(level_stints.c.entered_at < until)
    scope = and_(*conditions)
    resolved = level_stints.c.outcome == "resolved"
    rows = await connection.execute(
        select(
            level_stints.c.level,
            func.count(),
            func.sum(case((resolved, 1), else_=0)),
            func.sum(case((and_(resolved, ~level_stints.c.missed), 1), else_=0)),
            func.sum(case((level_stints.c.outcome == "escalated", 1), else_=0)),
        )
        .where(scope)
        .group_by(level_stints.c.level)
    )
    counted = {
        row[0]: (int(row[1]), int(row[2] or 0), int(row[3] or 0), int(row[4] or 0)) for row in rows
    }
    accepts = await connection.execute(
        select(level_stints.c.level, level_stints.c.entered_at, level_stints.c.accepted_at).where(
            scope, level_stints.c.accepted_at.is_not(None)
        )
    )
    waits: dict[str, list[float]] = {}
    for level, entered, accepted in accepts:
        waits.setdefault(level, []).append((accepted - entered).total_seconds())
    complaints = await connection.scalar(
        select(func.count(func.distinct(level_stints.c.complaint_id))).where(scope)
    )

    levels = []
    for level in Level:
        received, done, on_time, escalated = counted.get(level.value, (0, 0, 0, 0))
        level_waits = waits.get(level.value, [])
        levels.append(
            LevelFigures(
                level=level,
                received=received,
                resolved=done,
                resolution_rate=_ratio(done, received),
                on_time_rate=_ratio(on_time, done),
                escalations=escalated,
                mean_time_to_accept_seconds=round(sum(level_waits) / len(level_waits), 1)
                if level_waits
                else None,
            )
        )
    all_resolved = sum(figure.resolved for figure in levels)
    at_village = levels[0].resolved
    return Figures(
        levels=levels,
        received=int(complaints or 0),
        resolved=all_resolved,
        share_resolved_at_village=_ratio(at_village, all_resolved),
    )
