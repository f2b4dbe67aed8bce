"""A fresh case for the pure-rule tests: just assigned to ``assignee``, first clock."""

from __future__ import annotations

from dataclasses import replace

from services.routing.domain import Case
from yijian.contracts.events import CaseStatus, Org
from yijian.level import Level

VILLAGE = Org(code="620922100201", name="新华村", level=Level.VILLAGE)


def new_case(assignee: Org = VILLAGE, **changes: object) -> Case:
    case = Case(
        complaint_id="c1",
        tracking_no="GZ260302-AAAAAA",
        category=None,
        urgency="normal",
        status=CaseStatus.ASSIGNED,
        level=assignee.level,
        assignee=assignee,
        supervisor=None,
        clock=1,
        returns=0,
        reopens=0,
        overdue=False,
        missed_deadlines=0,
    )
    return replace(case, **changes)  # type: ignore[arg-type]
