"""The case and its state machine: pure rules, no I/O, no clock.

Routing is the only writer of a case's state. Every change goes through ``transition``,
which either returns the new case or raises ``Refused`` with the HTTP status and a reason
a member of staff can read.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from yijian.contracts.events import CaseStatus, Org, Urgency
from yijian.level import Level


class Action(StrEnum):
    ACCEPT = "accept"  # 签收
    REPLY = "reply"  # 答复
    RESOLVE = "resolve"  # 办结
    RETURN = "return"  # 退回
    DISPATCH = "dispatch"  # 分派 / 转办 down
    VISIT = "visit"  # 回访: ask the citizen afterwards
    CLOSE = "close"  # 归档
    REOPEN = "reopen"  # 重办 after 不满意
    ESCALATE = "escalate"  # 督办: a deadline lapsed below the county
    MARK_OVERDUE = "mark_overdue"  # a deadline lapsed at the county


S = CaseStatus
_OPEN = {S.ASSIGNED, S.ACCEPTED, S.REPLIED, S.ESCALATED, S.REOPENED, S.PENDING_DISPATCH}

ALLOWED: dict[Action, set[CaseStatus]] = {
    Action.ACCEPT: {S.ASSIGNED, S.ESCALATED, S.REOPENED},
    Action.REPLY: {S.ACCEPTED, S.REPLIED, S.ESCALATED},
    Action.RESOLVE: {S.ACCEPTED, S.REPLIED, S.ESCALATED},
    Action.RETURN: {S.ASSIGNED, S.REOPENED, S.PENDING_DISPATCH},
    Action.DISPATCH: _OPEN,
    Action.VISIT: {S.RESOLVED},
    Action.CLOSE: {S.RESOLVED},
    Action.REOPEN: {S.RESOLVED},
    Action.ESCALATE: _OPEN,
    Action.MARK_OVERDUE: _OPEN,
}

# Statuses in which nobody has yet taken responsibility at the current level.
AWAITING_ACCEPT = {S.ASSIGNED, S.ESCALATED, S.REOPENED, S.PENDING_DISPATCH}
FINISHED = {S.RESOLVED, S.CLOSED}


class Refused(Exception):
    """An action that may not happen. ``status`` is 403 (not yours) or 409 (not now)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Case:
    complaint_id: str
    tracking_no: str
    category: str | None
    urgency: Urgency
    status: CaseStatus
    level: Level
    assignee: Org
    supervisor: Org | None
    clock: int
    returns: int
    reopens: int
    overdue: bool
    missed_deadlines: int
    # 回访 recorded for the current resolution; archiving (归档) waits for it.
    visited: bool = False

    @property
    def accountable(self) -> Org:
        """Who answers for the case now: the supervisor during 督办, else the assignee."""
        return self.supervisor or self.assignee


def check_allowed(case: Case, action: Action) -> None:
    if case.status not in ALLOWED[action]:
        raise Refused(409, f"cannot {action.value} a case that is {case.status.value}")


def accept(case: Case) -> Case:
    check_allowed(case, Action.ACCEPT)
    return replace(case, status=S.ACCEPTED)


def reply(case: Case) -> Case:
    check_allowed(case, Action.REPLY)
    return replace(case, status=S.REPLIED)


def resolve(case: Case) -> Case:
    check_allowed(case, Action.RESOLVE)
    return replace(case, status=S.RESOLVED)


def visit(case: Case) -> Case:
    """回访: someone asked the citizen how it went; recorded once per resolution."""
    check_allowed(case, Action.VISIT)
    if case.visited:
        raise Refused(409, "the return visit for this resolution is already recorded")
    return replace(case, visited=True)


def close(case: Case) -> Case:
    check_allowed(case, Action.CLOSE)
    if not case.visited:
        raise Refused(409, "record the return visit (回访) before archiving")
    return replace(case, status=S.CLOSED)


def assign(case: Case, target: Org, *, pending: bool) -> Case:
    """A new accountable org with fresh clocks: dispatch, re-routing after a return."""
    return replace(
        case,
        status=S.PENDING_DISPATCH if pending else S.ASSIGNED,
        level=target.level,
        assignee=target,
        supervisor=None,
        clock=case.clock + 1,
        overdue=False,
    )


def dispatch(case: Case, target: Org) -> Case:
    check_allowed(case, Action.DISPATCH)
    if target.level == Level.COUNTY:
        raise Refused(409, "dispatch goes to a township or a village, not the county")
    if target.level.rank > case.accountable.level.rank:
        raise Refused(409, "dispatch goes down, not up: a missed deadline escalates by itself")
    return assign(case, target, pending=False)


def give_back(case: Case, max_returns: int) -> tuple[Case, bool]:
    """退回: count it; True when the returns exhausted the limit and it goes up for a decision."""
    check_allowed(case, Action.RETURN)
    returned = replace(case, returns=case.returns + 1)
    return returned, returned.returns > max_returns


def return_queue_level(case: Case, exhausted: bool) -> Level:
    """Where a returned case waits for a person: one level above the org that gave it back,
    never below the level already accountable (a case reopened under county supervision
    stays with the county), and the county once the returns are exhausted."""
    if exhausted:
        return Level.COUNTY
    above = case.assignee.level.above() or Level.COUNTY
    return max(above, case.level, key=lambda level: level.rank)


def reopen(case: Case, max_reopens: int) -> Case:
    check_allowed(case, Action.REOPEN)
    if case.reopens >= max_reopens:
        raise Refused(409, f"this complaint was already reopened {case.reopens} times")
    return replace(
        case, status=S.REOPENED, reopens=case.reopens + 1, clock=case.clock + 1, visited=False
    )


def escalate(case: Case, supervisor: Org) -> Case:
    """督办: the next level supervises; the assignee keeps the work."""
    check_allowed(case, Action.ESCALATE)
    if supervisor.level.rank != case.level.rank + 1:
        raise Refused(409, f"{supervisor.name} does not supervise the {case.level.value} level")
    return replace(
        case,
        status=S.ESCALATED,
        level=supervisor.level,
        supervisor=supervisor,
        clock=case.clock + 1,
        missed_deadlines=case.missed_deadlines + 1,
    )


def mark_overdue(case: Case) -> Case:
    check_allowed(case, Action.MARK_OVERDUE)
    return replace(case, overdue=True, missed_deadlines=case.missed_deadlines + 1)
