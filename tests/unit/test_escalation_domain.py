"""Deadline planning: what fires when, computed without a database or a clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.escalation.domain import (
    DeadlineKind,
    PlannedDeadline,
    next_repeat,
    plan_clock,
    terms_for,
)
from yijian.calendar import CalendarKind
from yijian.contracts.events import Stage
from yijian.level import Level
from yijian.policy import LevelTerms, SlaPolicy

BEIJING = ZoneInfo("Asia/Shanghai")
START = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # Monday 09:00 in Beijing
POLICY = SlaPolicy.default()


def terms(
    accept: timedelta,
    resolve: timedelta,
    remind_before: timedelta,
    calendar: CalendarKind = CalendarKind.NATURAL,
) -> LevelTerms:
    return LevelTerms(accept, resolve, remind_before, calendar, overdue_repeat=timedelta(days=1))


def by(stage: Stage, kind: DeadlineKind, planned: tuple[PlannedDeadline, ...]) -> datetime:
    [match] = [d.fire_at for d in planned if d.stage is stage and d.kind is kind]
    return match


def test_village_reminds_ninety_minutes_in_and_is_due_at_two_hours() -> None:
    plan = plan_clock(POLICY.terms(Level.VILLAGE), START)

    assert by(Stage.ACCEPT, DeadlineKind.REMIND, plan.deadlines) == START + timedelta(hours=1.5)
    assert by(Stage.ACCEPT, DeadlineKind.DUE, plan.deadlines) == START + timedelta(hours=2)
    assert plan.accept_due_at == START + timedelta(hours=2)
    assert plan.resolve_due_at == START + timedelta(days=3)
    assert by(Stage.RESOLVE, DeadlineKind.REMIND, plan.deadlines) == START + timedelta(
        days=3, minutes=-30
    )


def test_plan_is_in_firing_order_and_every_reminder_points_at_its_deadline() -> None:
    plan = plan_clock(POLICY.terms(Level.VILLAGE), START)

    assert [(d.stage, d.kind) for d in plan.deadlines] == [
        (Stage.ACCEPT, DeadlineKind.REMIND),
        (Stage.ACCEPT, DeadlineKind.DUE),
        (Stage.RESOLVE, DeadlineKind.REMIND),
        (Stage.RESOLVE, DeadlineKind.DUE),
    ]
    for deadline in plan.deadlines:
        expected = plan.accept_due_at if deadline.stage is Stage.ACCEPT else plan.resolve_due_at
        assert deadline.due_at == expected


def test_workday_clock_counts_the_rest_of_tuesday_and_skips_national_day() -> None:
    # Tuesday 2025-09-30 22:00 in Beijing, the eve of the 1–8 October holiday; 11 October (a
    # Saturday) is a 调休 make-up working day.
    start = datetime(2025, 9, 30, 22, 0, tzinfo=BEIJING)
    plan = plan_clock(
        terms(timedelta(hours=2), timedelta(days=3), timedelta(minutes=30), CalendarKind.WORKDAY),
        start,
    )

    # Two hours fit in what is left of the working Tuesday: due at its 24:00, not after the
    # holiday.
    assert plan.accept_due_at == datetime(2025, 10, 1, 0, 0, tzinfo=BEIJING)
    # Three working days: 2h on Tuesday, then 9, 10 October, and 22h of Saturday the 11th.
    assert plan.resolve_due_at == datetime(2025, 10, 11, 22, 0, tzinfo=BEIJING)
    assert by(Stage.RESOLVE, DeadlineKind.DUE, plan.deadlines).astimezone(BEIJING).date() == (
        datetime(2025, 10, 11).date()
    )
    assert by(Stage.RESOLVE, DeadlineKind.REMIND, plan.deadlines) == datetime(
        2025, 10, 11, 21, 30, tzinfo=BEIJING
    )


def test_workday_reminder_is_measured_on_the_workday_clock() -> None:
    # A township's 4h from Tuesday 22:00: 2h that night, 2h on Thursday 9 October after the
    # holiday; the 1h reminder lands on 9 October too, not in the holiday.
    start = datetime(2025, 9, 30, 22, 0, tzinfo=BEIJING)
    plan = plan_clock(POLICY.terms(Level.TOWNSHIP), start)

    assert plan.accept_due_at == datetime(2025, 10, 9, 2, 0, tzinfo=BEIJING)
    assert by(Stage.ACCEPT, DeadlineKind.REMIND, plan.deadlines) == datetime(
        2025, 10, 9, 1, 0, tzinfo=BEIJING
    )


@pytest.mark.parametrize("remind_before", [timedelta(hours=2), timedelta(hours=3)])
def test_no_reminder_when_remind_before_is_not_shorter_than_the_span(
    remind_before: timedelta,
) -> None:
    plan = plan_clock(terms(timedelta(hours=2), timedelta(days=1), remind_before), START)

    kinds = [(d.stage, d.kind) for d in plan.deadlines]
    assert (Stage.ACCEPT, DeadlineKind.REMIND) not in kinds
    assert (Stage.ACCEPT, DeadlineKind.DUE) in kinds
    assert (Stage.RESOLVE, DeadlineKind.REMIND) in kinds


def test_plan_is_in_utc_whatever_zone_the_start_came_in() -> None:
    plan = plan_clock(POLICY.terms(Level.VILLAGE), START.astimezone(BEIJING))

    assert all(d.fire_at.tzinfo is UTC for d in plan.deadlines)
    assert plan.accept_due_at == START + timedelta(hours=2)


def test_naive_start_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        plan_clock(POLICY.terms(Level.VILLAGE), datetime(2026, 3, 2, 9, 0))


def test_next_repeat_keeps_the_cadence() -> None:
    every = timedelta(days=1)
    assert next_repeat(START, every, START) == START + every
    assert next_repeat(START, every, START + timedelta(minutes=5)) == START + every


def test_next_repeat_skips_beats_missed_while_down() -> None:
    every = timedelta(hours=4)
    assert next_repeat(START, every, START + timedelta(hours=9)) == START + timedelta(hours=12)
    # Exactly on a beat: that beat is now, so the next one is one interval later.
    assert next_repeat(START, every, START + timedelta(hours=8)) == START + timedelta(hours=12)


def test_next_repeat_after_a_clock_jump_back_still_moves_forward() -> None:
    every = timedelta(days=1)
    assert next_repeat(START, every, START - timedelta(minutes=1)) == START + every


def test_terms_fall_back_to_defaults_for_names_the_policy_no_longer_has() -> None:
    assert terms_for(POLICY, Level.VILLAGE, "不存在的类别", "normal") == POLICY.terms(Level.VILLAGE)
    assert terms_for(POLICY, Level.VILLAGE, None, "very-urgent") == POLICY.terms(Level.VILLAGE)
    urgent = terms_for(POLICY, Level.VILLAGE, "治安隐患", "urgent")
    assert urgent == POLICY.terms(Level.VILLAGE, "治安隐患", "urgent")
    assert urgent.accept == timedelta(minutes=30)
