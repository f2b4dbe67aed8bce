"""Notify's message texts and its retry schedule: pure functions, no database, no clock."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from services.notify import templates
from services.notify.sending import backoff
from services.notify.templates import Message
from yijian.contracts.events import Stage
from yijian.level import Level

NO = "GZ260302-7K3Q9M"
# 14:30 in Beijing is 06:30 UTC.
DUE = datetime(2026, 3, 2, 6, 30, tzinfo=UTC)
DUE_TEXT = "2026-03-02 14:30"


def every_template() -> list[Message]:
    return [
        templates.new_assignment(tracking_no=NO, org_name="解放路社区", level=Level.VILLAGE),
        templates.dispatch_queue(tracking_no=NO, org_name="渊泉镇", level=Level.TOWNSHIP),
        templates.supervision(
            tracking_no=NO,
            supervisor_name="渊泉镇",
            level=Level.TOWNSHIP,
            assignee_name="解放路社区",
            from_level=Level.VILLAGE,
            stage=Stage.ACCEPT,
        ),
        templates.under_supervision(
            tracking_no=NO,
            assignee_name="解放路社区",
            supervisor_name="渊泉镇",
            level=Level.TOWNSHIP,
            stage=Stage.ACCEPT,
        ),
        templates.reminder(
            tracking_no=NO,
            assignee_name="解放路社区",
            stage=Stage.RESOLVE,
            due_at=DUE,
            overdue=False,
        ),
        templates.reminder(
            tracking_no=NO,
            assignee_name="解放路社区",
            stage=Stage.RESOLVE,
            due_at=DUE,
            overdue=True,
        ),
        templates.county_overdue(
            tracking_no=NO, assignee_name="渊泉镇", stage=Stage.RESOLVE, due_at=DUE
        ),
        templates.citizen_assigned(tracking_no=NO, org_name="解放路社区"),
        templates.citizen_replied(tracking_no=NO, org_name="解放路社区"),
        templates.citizen_resolved(tracking_no=NO),
    ]


def test_the_only_digits_in_any_message_are_the_tracking_number_and_a_time() -> None:
    for message in every_template():
        stripped = message.text.replace(NO, "").replace(DUE_TEXT, "")
        assert not re.search(r"\d", stripped), message
        # And certainly nothing shaped like a mainland mobile number.
        assert not re.search(r"1[3-9]\d{9}", message.text), message


def test_every_situation_has_its_own_template_name() -> None:
    names = [m.template for m in every_template()]
    # The two reminder variants share one template; every other situation is distinct.
    assert len(set(names)) == len(names) - 1


def test_new_assignment_asks_the_org_to_accept() -> None:
    message = templates.new_assignment(tracking_no=NO, org_name="解放路社区", level=Level.VILLAGE)
    assert message.text == (f"【新诉求待签收】诉求{NO}已交解放路社区（村(社区)）办理，请及时签收。")


def test_dispatch_queue_says_it_waits_for_a_person() -> None:
    message = templates.dispatch_queue(tracking_no=NO, org_name="渊泉镇", level=Level.TOWNSHIP)
    assert message.template == "pending_dispatch"
    assert "待分派" in message.text
    assert "渊泉镇" in message.text


@pytest.mark.parametrize(
    ("level", "stage", "label", "verb"),
    [
        (Level.TOWNSHIP, Stage.ACCEPT, "乡镇督办", "签收"),
        (Level.COUNTY, Stage.RESOLVE, "县平台督办", "办结"),
    ],
)
def test_supervision_names_the_level_and_the_missed_deadline(
    level: Level, stage: Stage, label: str, verb: str
) -> None:
    message = templates.supervision(
        tracking_no=NO,
        supervisor_name="上级",
        level=level,
        assignee_name="下级",
        from_level=Level.VILLAGE,
        stage=stage,
    )
    assert f"进入{label}环节" in message.text
    assert f"未在期限内{verb}" in message.text
    notice = templates.under_supervision(
        tracking_no=NO, assignee_name="下级", supervisor_name="上级", level=level, stage=stage
    )
    assert label in notice.text
    assert "由上级督办" in notice.text


def test_reminder_shows_the_deadline_in_beijing_time() -> None:
    message = templates.reminder(
        tracking_no=NO, assignee_name="解放路社区", stage=Stage.ACCEPT, due_at=DUE, overdue=False
    )
    assert message.text == f"【催办】诉求{NO}请解放路社区于2026-03-02 14:30前完成签收。"


def test_beijing_time_crosses_midnight() -> None:
    assert templates.beijing_time(datetime(2026, 3, 1, 16, 5, tzinfo=UTC)) == "2026-03-02 00:05"


def test_a_naive_deadline_is_refused_rather_than_guessed() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        templates.beijing_time(datetime(2026, 3, 2, 6, 30))


def test_county_overdue_is_a_repeated_reminder() -> None:
    message = templates.county_overdue(
        tracking_no=NO, assignee_name="渊泉镇", stage=Stage.RESOLVE, due_at=DUE
    )
    assert message.text.startswith("【县平台已超时，再次催办】")
    assert DUE_TEXT in message.text
    assert "渊泉镇仍未办结" in message.text


def test_citizen_messages() -> None:
    assert (
        templates.citizen_assigned(tracking_no=NO, org_name="解放路社区").text
        == f"您的诉求（编号{NO}）已转交解放路社区办理。"
    )
    assert "已答复" in templates.citizen_replied(tracking_no=NO, org_name="解放路社区").text
    assert (
        templates.citizen_resolved(tracking_no=NO).text == f"您的诉求（编号{NO}）已办结，请评价。"
    )


def test_backoff_doubles_from_thirty_seconds_and_stops_at_an_hour() -> None:
    assert [backoff(n) for n in (1, 2, 3, 4)] == [
        timedelta(seconds=30),
        timedelta(seconds=60),
        timedelta(seconds=120),
        timedelta(seconds=240),
    ]
    assert backoff(7) == timedelta(seconds=1920)
    assert backoff(8) == timedelta(hours=1)
    assert backoff(10_000) == timedelta(hours=1)
    with pytest.raises(ValueError, match="failed attempt"):
        backoff(0)
