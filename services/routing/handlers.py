"""Routing's consumer: new complaints, and deadlines that came due."""

from __future__ import annotations

from collections.abc import Mapping

from services.routing.casework import Casework
from yijian.bus.consumer import Handler
from yijian.contracts.events import ComplaintSubmitted, DeadlineMissed, ReminderDue


def handlers(casework: Casework) -> Mapping[str, Handler]:
    return {
        ComplaintSubmitted.TYPE: casework.open_case,
        ReminderDue.TYPE: casework.on_reminder_due,
        DeadlineMissed.TYPE: casework.on_deadline_missed,
    }
