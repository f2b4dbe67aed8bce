"""Routing's consumer: new complaints, citizens' ratings, the deadlines set and those come due."""

from __future__ import annotations

from collections.abc import Mapping

from services.routing.casework import Casework
from services.routing.ratings import RatingHandler
from yijian.bus.consumer import Handler
from yijian.contracts.events import (
    ComplaintRated,
    ComplaintSubmitted,
    DeadlineMissed,
    DeadlinesSet,
    ReminderDue,
)


def handlers(casework: Casework) -> Mapping[str, Handler]:
    return {
        ComplaintSubmitted.TYPE: casework.open_case,
        ReminderDue.TYPE: casework.on_reminder_due,
        DeadlineMissed.TYPE: casework.on_deadline_missed,
        DeadlinesSet.TYPE: casework.on_deadlines_set,
        ComplaintRated.TYPE: RatingHandler(casework).on_rated,
    }
