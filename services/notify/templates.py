"""The Chinese text of every message notify sends, one function per situation.

Each function takes only tracking numbers, org names, levels, stages and times — never a
payload — so the signatures themselves show that no personal data (name, phone, openid,
address, the citizen's own words) can reach a message.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from yijian.contracts.events import Stage
from yijian.level import Level

# China has kept UTC+8 without daylight saving since 1991, so a fixed offset is exact and
# needs no tz database on the host.
BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")

_STAGE_VERB = {Stage.ACCEPT: "签收", Stage.RESOLVE: "办结"}


@dataclass(frozen=True)
class Message:
    template: str
    text: str


def beijing_time(instant: datetime) -> str:
    """Staff read deadlines in local time, to the minute: 2026-03-02 14:30."""
    if instant.tzinfo is None:
        raise ValueError("a deadline must be timezone-aware")
    return instant.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M")


def supervision_label(level: Level) -> str:
    """乡镇督办 or 县平台督办: the stage the seeds name when a level takes over supervision."""
    return f"{level.label}督办"


def new_assignment(*, tracking_no: str, org_name: str, level: Level) -> Message:
    return Message(
        "new_assignment",
        f"【新诉求待签收】诉求{tracking_no}已交{org_name}（{level.label}）办理，请及时签收。",
    )


def dispatch_queue(*, tracking_no: str, org_name: str, level: Level) -> Message:
    return Message(
        "pending_dispatch",
        f"【待分派】诉求{tracking_no}未能自动匹配到办理村(社区)，"
        f"已进入{org_name}（{level.label}）待分派队列，请尽快分派。",
    )


def supervision(
    *,
    tracking_no: str,
    supervisor_name: str,
    level: Level,
    assignee_name: str,
    from_level: Level,
    stage: Stage,
) -> Message:
    """To the org that now supervises: which lower org missed which deadline."""
    verb = _STAGE_VERB[stage]
    return Message(
        "supervision",
        f"【{supervision_label(level)}】诉求{tracking_no}：{assignee_name}（{from_level.label}）"
        f"未在期限内{verb}，已进入{supervision_label(level)}环节，请{supervisor_name}督促办理。",
    )


def under_supervision(
    *,
    tracking_no: str,
    assignee_name: str,
    supervisor_name: str,
    level: Level,
    stage: Stage,
) -> Message:
    """To the assignee: it keeps the work, but now answers to the level above."""
    verb = _STAGE_VERB[stage]
    return Message(
        "under_supervision",
        f"【督办通知】诉求{tracking_no}因{assignee_name}未在期限内{verb}，"
        f"已进入{supervision_label(level)}，由{supervisor_name}督办，请尽快办理。",
    )


def reminder(
    *, tracking_no: str, assignee_name: str, stage: Stage, due_at: datetime, overdue: bool
) -> Message:
    """催办: before the deadline, or again after it when nothing above can take over."""
    verb = _STAGE_VERB[stage]
    due = beijing_time(due_at)
    if overdue:
        text = f"【催办】诉求{tracking_no}已超过{verb}期限（{due}），请{assignee_name}尽快{verb}。"
    else:
        text = f"【催办】诉求{tracking_no}请{assignee_name}于{due}前完成{verb}。"
    return Message("reminder", text)


def county_overdue(
    *, tracking_no: str, assignee_name: str, stage: Stage, due_at: datetime
) -> Message:
    verb = _STAGE_VERB[stage]
    return Message(
        "county_overdue",
        f"【县平台已超时，再次催办】诉求{tracking_no}的{verb}期限（{beijing_time(due_at)}）"
        f"已过，{assignee_name}仍未{verb}，请督促办理。",
    )


def citizen_assigned(*, tracking_no: str, org_name: str) -> Message:
    return Message("citizen_assigned", f"您的诉求（编号{tracking_no}）已转交{org_name}办理。")


def citizen_replied(*, tracking_no: str, org_name: str) -> Message:
    return Message(
        "citizen_replied", f"您的诉求（编号{tracking_no}）{org_name}已答复，请查看处理情况。"
    )


def citizen_resolved(*, tracking_no: str) -> Message:
    return Message("citizen_resolved", f"您的诉求（编号{tracking_no}）已办结，请评价。")
