"""Every event yijian publishes, typed and versioned.

Rules for payloads, checked by the contract tests:
- no personal data: no name, phone, WeChat openid, exact address or free text a citizen or
  staff member typed (it may hold any of those). Locations travel as codes, and coordinates
  rounded to 3 decimals (about 100 m): enough to find the grid, not the house;
- a new version is a new class; a field is never removed or retyped within a version.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import Field

from yijian.contracts.envelope import Payload
from yijian.level import Level

TOPIC_INTAKE = "yijian.intake.v1"
TOPIC_CASES = "yijian.cases.v1"
TOPIC_DEADLINES = "yijian.deadlines.v1"

Code = str  # an administrative code from the jurisdiction data set
Urgency = Literal["normal", "urgent"]
AssignReason = Literal["located", "start_level", "outside", "unknown", "returned", "dispatched"]


class Stage(StrEnum):
    """Which promise a deadline holds a level to."""

    ACCEPT = "accept"  # 签收
    RESOLVE = "resolve"  # 办结


class CaseStatus(StrEnum):
    PENDING_DISPATCH = "pending_dispatch"  # 待分派: no village could be found, a person decides
    ASSIGNED = "assigned"
    ACCEPTED = "accepted"
    REPLIED = "replied"
    RESOLVED = "resolved"
    CLOSED = "closed"
    ESCALATED = "escalated"  # in 督办 at a higher level, awaiting 签收
    REOPENED = "reopened"


class ReportedLocation(Payload):
    TYPE = "location"
    VERSION = 1
    grid_code: Code | None = None
    village_code: Code | None = None
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)


class ComplaintSubmitted(Payload):
    TYPE = "complaint.submitted"
    VERSION = 1
    complaint_id: str
    tracking_no: str
    category: str | None
    urgency: Urgency
    channel: str
    location: ReportedLocation
    has_contact: bool
    submitted_at: datetime


class ComplaintRated(Payload):
    """The citizen's verdict on a resolved complaint; 不满意 asks for it to be reopened."""

    TYPE = "complaint.rated"
    VERSION = 1
    complaint_id: str
    rating: Literal["satisfied", "basically_satisfied", "unsatisfied"]
    rated_at: datetime


class Org(Payload):
    TYPE = "org"
    VERSION = 1
    code: Code
    name: str
    level: Level


class ComplaintAssigned(Payload):
    """The case has an accountable org and a fresh set of clocks (``clock`` numbers them)."""

    TYPE = "complaint.assigned"
    VERSION = 1
    complaint_id: str
    tracking_no: str
    status: Literal["assigned", "pending_dispatch"]
    assignee: Org
    level: Level
    reason: AssignReason
    category: str | None
    urgency: Urgency
    clock: int = Field(ge=1)


class ComplaintAccepted(Payload):
    TYPE = "complaint.accepted"
    VERSION = 1
    complaint_id: str
    by: Org
    level: Level
    clock: int


class ComplaintReplied(Payload):
    TYPE = "complaint.replied"
    VERSION = 1
    complaint_id: str
    tracking_no: str
    by: Org
    level: Level


class ComplaintResolved(Payload):
    TYPE = "complaint.resolved"
    VERSION = 1
    complaint_id: str
    tracking_no: str
    by: Org
    level: Level
    on_time: bool


class ComplaintClosed(Payload):
    TYPE = "complaint.closed"
    VERSION = 1
    complaint_id: str
    by: Org
    level: Level


class ComplaintReturned(Payload):
    """退回: the org says the case is not theirs. The reason text stays in routing."""

    TYPE = "complaint.returned"
    VERSION = 1
    complaint_id: str
    by: Org
    level: Level
    returns: int = Field(ge=1)


class ComplaintEscalated(Payload):
    """督办: the next level now supervises; the assignee keeps working on it."""

    TYPE = "complaint.escalated"
    VERSION = 1
    complaint_id: str
    tracking_no: str
    from_level: Level
    level: Level
    supervisor: Org
    assignee: Org
    cause: Literal["accept_overdue", "resolve_overdue"]
    category: str | None
    urgency: Urgency
    clock: int = Field(ge=1)


class ComplaintReopened(Payload):
    TYPE = "complaint.reopened"
    VERSION = 1
    complaint_id: str
    tracking_no: str
    assignee: Org
    level: Level
    reopens: int = Field(ge=1)
    category: str | None
    urgency: Urgency
    clock: int = Field(ge=1)


class ComplaintReminded(Payload):
    """催办: routing confirmed the reminder still applies before anyone is told."""

    TYPE = "complaint.reminded"
    VERSION = 1
    complaint_id: str
    tracking_no: str
    assignee: Org
    supervisor: Org | None
    level: Level
    stage: Stage
    due_at: datetime
    overdue: bool


class ComplaintOverdue(Payload):
    """The county missed a deadline: nothing above it, so it is marked and reminded again."""

    TYPE = "complaint.overdue"
    VERSION = 1
    complaint_id: str
    tracking_no: str
    assignee: Org
    supervisor: Org
    level: Level
    stage: Stage
    due_at: datetime
    clock: int


class DeadlinesSet(Payload):
    """The deadlines now in force for a complaint (for the citizen's view)."""

    TYPE = "escalation.deadlines_set"
    VERSION = 1
    complaint_id: str
    level: Level
    clock: int
    accept_due_at: datetime
    resolve_due_at: datetime


class ReminderDue(Payload):
    TYPE = "escalation.reminder_due"
    VERSION = 1
    complaint_id: str
    level: Level
    stage: Stage
    due_at: datetime
    clock: int
    overdue: bool


class DeadlineMissed(Payload):
    TYPE = "escalation.deadline_missed"
    VERSION = 1
    complaint_id: str
    level: Level
    stage: Stage
    due_at: datetime
    clock: int


EVENT_TYPES: dict[str, type[Payload]] = {
    model.TYPE: model
    for model in (
        ComplaintSubmitted,
        ComplaintRated,
        ComplaintAssigned,
        ComplaintAccepted,
        ComplaintReplied,
        ComplaintResolved,
        ComplaintClosed,
        ComplaintReturned,
        ComplaintEscalated,
        ComplaintReopened,
        ComplaintReminded,
        ComplaintOverdue,
        DeadlinesSet,
        ReminderDue,
        DeadlineMissed,
    )
}

# Each topic carries one producer's events, so one complaint's events from that producer
# stay in order (the key is the complaint id).
_PRODUCED_BY_INTAKE = {ComplaintSubmitted.TYPE, ComplaintRated.TYPE}

TOPIC_OF: dict[str, str] = {
    event_type: TOPIC_INTAKE
    if event_type in _PRODUCED_BY_INTAKE
    else TOPIC_DEADLINES
    if event_type.startswith("escalation.")
    else TOPIC_CASES
    for event_type in EVENT_TYPES
}
