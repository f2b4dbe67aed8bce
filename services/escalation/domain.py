"""Deadline arithmetic: given a level's terms and the instant its clocks started, what fires when.

Pure functions over dataclasses, no database and no clock, so every rule here is tested on its
own. The store turns a ``ClockPlan`` into rows; the firing loop turns rows into events.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from uuid import UUID

from yijian.calendar import add, subtract
from yijian.contracts.events import Stage
from yijian.level import Level
from yijian.policy import LevelTerms, SlaPolicy


class DeadlineKind(StrEnum):
    """What a deadline row announces when its time comes."""

    REMIND = "remind"  # 催办 before the deadline
    DUE = "due"  # the deadline itself passed
    REPEAT = "repeat"  # the county is overdue; nothing above it, so remind again and again


class DeadlineState(StrEnum):
    PENDING = "pending"
    FIRED = "fired"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class ComplaintClock:
    """Whose deadlines these are: one numbered set of clocks of a complaint at one level."""

    complaint_id: str
    clock: int
    level: Level
    # The names the terms were looked up by, so a repeat later finds the same terms.
    category: str | None
    urgency: str
    # When the clocks started; a clock-less cancel (resolved, closed, returned) only stops
    # clocks that had started by the time it happened, so a late replay cannot stop newer ones.
    started_at: datetime
    # The story the deadlines belong to: everything they fire shares it.
    correlation_id: UUID


@dataclass(frozen=True)
class PlannedDeadline:
    stage: Stage
    kind: DeadlineKind
    fire_at: datetime
    due_at: datetime


@dataclass(frozen=True)
class ClockPlan:
    """One fresh set of clocks for a level: the two deadlines and everything to fire for them."""

    accept_due_at: datetime
    resolve_due_at: datetime
    deadlines: tuple[PlannedDeadline, ...]


def plan_clock(terms: LevelTerms, start: datetime) -> ClockPlan:
    """The deadlines a level gets when its clocks start at ``start``.

    Each deadline gets a reminder ``remind_before`` earlier on the same calendar, unless that
    would be at or before the start: a reminder the level receives the instant it is assigned
    says nothing the assignment did not.
    """
    start = as_utc(start)
    planned: list[PlannedDeadline] = []
    dues: dict[Stage, datetime] = {}
    for stage, span in ((Stage.ACCEPT, terms.accept), (Stage.RESOLVE, terms.resolve)):
        due = add(start, span, terms.calendar)
        dues[stage] = due
        if terms.remind_before < span:
            remind = subtract(due, terms.remind_before, terms.calendar)
            if remind > start:
                planned.append(PlannedDeadline(stage, DeadlineKind.REMIND, remind, due))
        planned.append(PlannedDeadline(stage, DeadlineKind.DUE, due, due))
    planned.sort(key=lambda deadline: deadline.fire_at)
    return ClockPlan(dues[Stage.ACCEPT], dues[Stage.RESOLVE], tuple(planned))


def terms_for(
    policy: SlaPolicy, level: Level, category: str | None, urgency: str | None
) -> LevelTerms:
    """The terms for a complaint; names the policy does not know fall back to the defaults.

    A county may drop a category from its policy while complaints of that kind are still open.
    Failing would leave those complaints with no deadlines at all, which is worse than holding
    them to the level's default terms.
    """
    known_category = category if category in policy.categories else None
    known_urgency = urgency if urgency in policy.urgencies else None
    return policy.terms(level, known_category, known_urgency)


def next_repeat(fired_at: datetime, every: timedelta, now: datetime) -> datetime:
    """When the overdue reminder fired at ``fired_at`` repeats next: the first beat after now.

    Beats stay on the original cadence (fired_at + k·every), but beats that passed while the
    service was down are skipped, so a restart after a long outage sends one reminder, not a
    burst of identical ones.
    """
    if every <= timedelta():
        raise ValueError(f"repeat interval must be positive, got {every!r}")
    fired_at, now = as_utc(fired_at), as_utc(now)
    if now < fired_at:
        return fired_at + every
    beats = (now - fired_at) // every + 1
    return fired_at + beats * every


def as_utc(moment: datetime) -> datetime:
    # Rows compare fire_at as stored; every instant must be in one zone for that to hold.
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"instant must be timezone-aware, got {moment.isoformat()}")
    return moment.astimezone(UTC)
