"""The staff inbox: what an org must handle, nearest deadline first, and what it supervises.

Deadlines come from escalation's ``escalation.deadlines_set`` events, kept on the case row;
routing never asks escalation. The colour tells staff at a glance how much time is left:
green while more than half of the span is left, amber after that, red once it has passed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel
from sqlalchemy import ColumnElement, Select, and_, case, func, select
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from services.routing import domain
from services.routing.access import below
from services.routing.api import CaseOut
from services.routing.store import cases
from yijian.contracts.events import CaseStatus, Org, Stage
from yijian.jurisdiction import Jurisdiction
from yijian.level import Level

View = Literal["assigned", "supervised"]
# What an org still has to do something about: resolved cases wait for 回访 and 归档.
ASSIGNED_DEFAULT: list[CaseStatus] = [s for s in CaseStatus if s != CaseStatus.CLOSED]
SUPERVISED_DEFAULT: list[CaseStatus] = [s for s in CaseStatus if s not in domain.FINISHED]
_WORKING = {CaseStatus.ACCEPTED, CaseStatus.REPLIED}


class Colour(StrEnum):
    GREEN = "green"
    AMBER = "amber"
    RED = "red"


def colour_of(now: datetime, started_at: datetime | None, due_at: datetime) -> Colour:
    """Red when overdue, green while more than half the time is left, amber in between."""
    left = (due_at - now).total_seconds()
    if left <= 0:
        return Colour.RED
    if started_at is None or due_at <= started_at:
        return Colour.AMBER  # no span to compare with: not late, but do not look relaxed
    span = (due_at - started_at).total_seconds()
    return Colour.GREEN if left > span / 2 else Colour.AMBER


def stage_in_force(status: CaseStatus) -> Stage | None:
    """Which promise the accountable level is held to now; None once resolved."""
    if status in domain.AWAITING_ACCEPT:
        return Stage.ACCEPT
    if status in _WORKING:
        return Stage.RESOLVE
    return None


class DeadlineOut(BaseModel):
    stage: Stage
    due_at: datetime
    started_at: datetime | None
    seconds_left: int
    colour: Colour


class CaseSummary(CaseOut):
    """What a staff action answers, plus what the inbox sorts and colours by."""

    submitted_at: datetime
    updated_at: datetime
    accept_due_at: datetime | None
    resolve_due_at: datetime | None
    deadline: DeadlineOut | None


def _org(code: str | None, name: str | None, level: str | None) -> Org | None:
    if code is None or name is None or level is None:
        return None
    return Org(code=code, name=name, level=Level(level))


def summarize(row: Row[tuple[object, ...]], now: datetime) -> CaseSummary:
    status = CaseStatus(row.status)
    stage = stage_in_force(status)
    due = row.accept_due_at if stage == Stage.ACCEPT else row.resolve_due_at
    deadline = None
    if stage is not None and due is not None:
        deadline = DeadlineOut(
            stage=stage,
            due_at=due,
            started_at=row.clock_started_at,
            seconds_left=int((due - now).total_seconds()),
            colour=colour_of(now, row.clock_started_at, due),
        )
    assignee = _org(row.assignee_code, row.assignee_name, row.assignee_level)
    assert assignee is not None
    return CaseSummary(
        complaint_id=row.complaint_id,
        tracking_no=row.tracking_no,
        status=status.value,
        level=row.level,
        assignee=assignee,
        supervisor=_org(row.supervisor_code, row.supervisor_name, row.supervisor_level),
        category=row.category,
        urgency=row.urgency,
        returns=row.returns,
        reopens=row.reopens,
        overdue=row.overdue,
        visited=row.visited_at is not None,
        submitted_at=row.submitted_at,
        updated_at=row.updated_at,
        accept_due_at=row.accept_due_at,
        resolve_due_at=row.resolve_due_at,
        deadline=deadline,
    )


def _where(
    jurisdiction: Jurisdiction, org_code: str, view: View, statuses: list[CaseStatus]
) -> ColumnElement[bool]:
    if view == "assigned":
        mine = cases.c.assignee_code == org_code
    else:
        # 督办 below: cases a level under this org let lapse (whoever supervises them now).
        mine = and_(
            cases.c.supervisor_code.is_not(None),
            cases.c.assignee_code.in_(below(jurisdiction, org_code)),
        )
    return and_(mine, cases.c.status.in_([s.value for s in statuses]))


def _nearest_deadline_first(query: Select[tuple[object, ...]]) -> Select[tuple[object, ...]]:
    awaiting = [s.value for s in domain.AWAITING_ACCEPT]
    working = [s.value for s in _WORKING]
    due = case(
        (cases.c.status.in_(awaiting), cases.c.accept_due_at),
        (cases.c.status.in_(working), cases.c.resolve_due_at),
        else_=None,
    )
    # No deadline (resolved, or not yet set) goes last, on every database.
    return query.order_by(due.is_(None), due, cases.c.submitted_at, cases.c.complaint_id)


@dataclass(frozen=True)
class Page:
    total: int
    items: list[CaseSummary]


async def inbox_page(
    connection: AsyncConnection,
    jurisdiction: Jurisdiction,
    org_code: str,
    view: View,
    statuses: list[CaseStatus] | None,
    limit: int,
    offset: int,
    now: datetime,
) -> Page:
    chosen = statuses or (ASSIGNED_DEFAULT if view == "assigned" else SUPERVISED_DEFAULT)
    where = _where(jurisdiction, org_code, view, chosen)
    total = (
        await connection.execute(select(func.count()).select_from(cases).where(where))
    ).scalar_one()
    query = _nearest_deadline_first(select(cases).where(where)).limit(limit).offset(offset)
    rows = await connection.execute(query)
    return Page(total=int(total), items=[summarize(row, now) for row in rows])
