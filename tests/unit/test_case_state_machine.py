"""The case state machine, as pure functions: no database, no clock."""

from __future__ import annotations

from dataclasses import replace

import pytest

from services.routing import domain
from services.routing.domain import Action, Case, Refused
from tests.unit import cases
from yijian.contracts.events import CaseStatus, Org
from yijian.level import Level

VILLAGE = Org(code="620922100201", name="新华村", level=Level.VILLAGE)
OTHER_VILLAGE = Org(code="620922100202", name="红旗村", level=Level.VILLAGE)
TOWNSHIP = Org(code="620922100", name="渊泉镇", level=Level.TOWNSHIP)
COUNTY = Org(code="620922", name="瓜州县", level=Level.COUNTY)


def new_case(**changes: object) -> Case:
    return replace(cases.new_case(VILLAGE), **changes)  # type: ignore[arg-type]


def test_the_happy_path() -> None:
    case = domain.accept(new_case())
    assert case.status == CaseStatus.ACCEPTED
    case = domain.resolve(domain.reply(case))
    assert case.status == CaseStatus.RESOLVED
    case = domain.visit(case)
    assert (case.status, case.visited) == (CaseStatus.RESOLVED, True)
    assert domain.close(case).status == CaseStatus.CLOSED


def test_archiving_waits_for_the_return_visit_and_a_visit_is_recorded_once() -> None:
    resolved = new_case(status=CaseStatus.RESOLVED)
    with pytest.raises(Refused, match="回访") as refused:
        domain.close(resolved)
    assert refused.value.status == 409
    visited = domain.visit(resolved)
    with pytest.raises(Refused, match="already recorded"):
        domain.visit(visited)
    with pytest.raises(Refused):
        domain.visit(new_case(status=CaseStatus.ACCEPTED))  # nothing to ask about yet


def test_a_reopened_case_needs_a_new_return_visit() -> None:
    visited = domain.visit(new_case(status=CaseStatus.RESOLVED))
    reopened = domain.reopen(visited, max_reopens=2)
    assert not reopened.visited


@pytest.mark.parametrize(
    ("status", "step"),
    [
        (CaseStatus.ASSIGNED, domain.resolve),
        (CaseStatus.ASSIGNED, domain.reply),
        (CaseStatus.ACCEPTED, domain.accept),
        (CaseStatus.RESOLVED, domain.accept),
        (CaseStatus.CLOSED, domain.reply),
        (CaseStatus.CLOSED, domain.close),
        (CaseStatus.CLOSED, domain.visit),
        (CaseStatus.PENDING_DISPATCH, domain.accept),
    ],
)
def test_illegal_steps_are_refused_with_409(status: CaseStatus, step: object) -> None:
    with pytest.raises(Refused) as refused:
        step(new_case(status=status))  # type: ignore[operator]
    assert refused.value.status == 409
    assert status.value in refused.value.reason


def test_escalation_climbs_one_level_and_keeps_the_assignee() -> None:
    case = domain.escalate(new_case(), TOWNSHIP)
    assert (case.status, case.level, case.supervisor) == (
        CaseStatus.ESCALATED,
        Level.TOWNSHIP,
        TOWNSHIP,
    )
    assert case.assignee == VILLAGE
    assert case.clock == 2
    assert case.accountable == TOWNSHIP
    case = domain.escalate(case, COUNTY)
    assert case.level == Level.COUNTY
    with pytest.raises(Refused):
        domain.escalate(new_case(), COUNTY)  # no skipping the township


def test_the_county_is_marked_overdue_instead_of_climbing() -> None:
    case = domain.mark_overdue(new_case(level=Level.COUNTY, assignee=COUNTY))
    assert case.overdue
    assert case.level == Level.COUNTY
    assert case.clock == 1  # its deadlines stay; only reminders repeat


def test_dispatch_goes_down_with_fresh_clocks_and_never_up() -> None:
    supervised = domain.escalate(new_case(), TOWNSHIP)
    case = domain.dispatch(supervised, OTHER_VILLAGE)
    assert (case.status, case.level, case.assignee) == (
        CaseStatus.ASSIGNED,
        Level.VILLAGE,
        OTHER_VILLAGE,
    )
    assert case.supervisor is None
    assert case.clock == supervised.clock + 1
    with pytest.raises(Refused):
        domain.dispatch(new_case(), TOWNSHIP)
    with pytest.raises(Refused):
        domain.dispatch(new_case(level=Level.COUNTY, assignee=COUNTY), COUNTY)


def test_returns_are_counted_and_the_limit_says_when_to_go_up() -> None:
    case, exhausted = domain.give_back(new_case(), max_returns=2)
    assert (case.returns, exhausted) == (1, False)
    case, exhausted = domain.give_back(new_case(returns=2), max_returns=2)
    assert (case.returns, exhausted) == (3, True)
    with pytest.raises(Refused):
        domain.give_back(new_case(status=CaseStatus.RESOLVED), max_returns=2)


def test_reopen_is_bounded() -> None:
    resolved = new_case(status=CaseStatus.RESOLVED)
    reopened = domain.reopen(resolved, max_reopens=2)
    assert (reopened.status, reopened.reopens, reopened.clock) == (CaseStatus.REOPENED, 1, 2)
    with pytest.raises(Refused, match="already reopened 2 times"):
        domain.reopen(new_case(status=CaseStatus.RESOLVED, reopens=2), max_reopens=2)


def test_every_action_has_a_rule_and_finished_cases_only_visit_close_or_reopen() -> None:
    assert set(domain.ALLOWED) == set(Action)
    for action, statuses in domain.ALLOWED.items():
        if CaseStatus.RESOLVED in statuses:
            assert action in {Action.VISIT, Action.CLOSE, Action.REOPEN}
        assert CaseStatus.CLOSED not in statuses
