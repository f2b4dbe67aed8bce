"""Property tests of the case state machine: any sequence of actions, legal or not.

Hypothesis drives a case through random staff actions, deadline lapses and citizen
reopenings, and after every step checks what must always hold: only known statuses, an
archived case stays archived, the accountable level never drops except by an explicit
dispatch, a new accountable org gets fresh clocks, and a refusal names its reason.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import settings, strategies
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from services.routing import domain
from services.routing.domain import ALLOWED, Action, Case, Refused
from tests.unit.cases import new_case
from yijian.contracts.events import CaseStatus, Org
from yijian.level import Level

VILLAGES = [
    Org(code="620922100201", name="新华村", level=Level.VILLAGE),
    Org(code="620922100202", name="红旗村", level=Level.VILLAGE),
]
TOWNSHIP = Org(code="620922100", name="渊泉镇", level=Level.TOWNSHIP)
COUNTY = Org(code="620922", name="瓜州县", level=Level.COUNTY)
ORGS = [*VILLAGES, TOWNSHIP, COUNTY]
AT_LEVEL = {Level.TOWNSHIP: TOWNSHIP, Level.COUNTY: COUNTY}
MAX_RETURNS = 2
MAX_REOPENS = 2


class CaseLife(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.case = new_case(VILLAGES[0])
        self.archived = False

    def step(self, action: Action, change: Callable[[], Case]) -> None:
        """Apply one step; check the refusal rules, or the rules of a step that happened."""
        before = self.case
        refused: Refused | None = None
        try:
            after = change()
        except Refused as refusal:
            refused = refusal
        if refused is not None:
            assert refused.status in (403, 409)
            assert refused.reason
            # Allowed-status refusals are exactly the table's; other refusals are finer rules.
            if before.status not in ALLOWED[action]:
                assert str(action.value) in refused.reason
            return
        assert isinstance(after, Case)
        assert before.status in ALLOWED[action], f"{action} happened from {before.status}"
        if action != Action.DISPATCH:
            assert after.level.rank >= before.level.rank, f"{action} lowered the level"
        if after.accountable != before.accountable:
            assert after.clock == before.clock + 1, "a new accountable org gets fresh clocks"
        self.case = after

    @rule()
    def accept(self) -> None:
        self.step(Action.ACCEPT, lambda: domain.accept(self.case))

    @rule()
    def reply(self) -> None:
        self.step(Action.REPLY, lambda: domain.reply(self.case))

    @rule()
    def resolve(self) -> None:
        self.step(Action.RESOLVE, lambda: domain.resolve(self.case))

    @rule()
    def visit(self) -> None:
        self.step(Action.VISIT, lambda: domain.visit(self.case))

    @rule()
    def close(self) -> None:
        before = self.case
        self.step(Action.CLOSE, lambda: domain.close(self.case))
        if self.case.status == CaseStatus.CLOSED and before.status != CaseStatus.CLOSED:
            assert before.status == CaseStatus.RESOLVED
            assert before.visited

    @rule()
    def reopen(self) -> None:
        self.step(Action.REOPEN, lambda: domain.reopen(self.case, MAX_REOPENS))

    @rule(org=strategies.sampled_from(ORGS))
    def dispatch(self, org: Org) -> None:
        self.step(Action.DISPATCH, lambda: domain.dispatch(self.case, org))

    @rule()
    def give_back(self) -> None:
        """退回, then re-routed to the queue the domain names, as casework does."""

        def returned() -> Case:
            counted, exhausted = domain.give_back(self.case, MAX_RETURNS)
            level = domain.return_queue_level(counted, exhausted)
            return domain.assign(counted, AT_LEVEL[level], pending=True)

        self.step(Action.RETURN, returned)

    @rule()
    def deadline_lapses(self) -> None:
        """What routing does when escalation reports a missed deadline."""
        above = self.case.level.above()
        if above is None:
            self.step(Action.MARK_OVERDUE, lambda: domain.mark_overdue(self.case))
        else:
            self.step(Action.ESCALATE, lambda: domain.escalate(self.case, AT_LEVEL[above]))

    @precondition(lambda machine: machine.case.level == Level.COUNTY)
    @rule()
    def nothing_climbs_above_the_county(self) -> None:
        with pytest.raises(Refused) as refused:
            domain.escalate(self.case, COUNTY)
        assert refused.value.status == 409

    @invariant()
    def holds_always(self) -> None:
        case = self.case
        assert case.status in set(CaseStatus)
        assert case.level == case.accountable.level, "the level is the accountable org's"
        if case.supervisor is not None:
            assert case.supervisor.level.rank > case.assignee.level.rank
        assert 0 <= case.reopens <= MAX_REOPENS
        assert case.returns >= 0
        assert case.clock >= 1
        if self.archived:
            assert case.status == CaseStatus.CLOSED, "an archived case came back"
        self.archived = case.status == CaseStatus.CLOSED


CaseLife.TestCase.settings = settings(max_examples=300, stateful_step_count=40, deadline=None)
test_case_life = CaseLife.TestCase
