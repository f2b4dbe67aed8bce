"""Everything that changes a case, whether a person or a deadline caused it.

Each method runs inside the caller's transaction: the case row, its action log, its stint
and the events it emits commit together or not at all.
"""

from __future__ import annotations

from uuid import UUID

from services.routing import domain
from services.routing.access import authorize, org_ref
from services.routing.domain import Action, Case, Refused
from services.routing.placement import first_assignment
from services.routing.repository import CaseRepository, StoredCase
from yijian.bus.outbox import Transaction
from yijian.contracts import Envelope
from yijian.contracts.events import (
    AssignReason,
    CaseStatus,
    ComplaintAccepted,
    ComplaintAssigned,
    ComplaintClosed,
    ComplaintEscalated,
    ComplaintOverdue,
    ComplaintReminded,
    ComplaintReopened,
    ComplaintReplied,
    ComplaintResolved,
    ComplaintReturned,
    ComplaintSubmitted,
    DeadlineMissed,
    DeadlinesSet,
    Org,
    ReminderDue,
    Stage,
)
from yijian.jurisdiction import Jurisdiction
from yijian.level import Level
from yijian.policy import SlaPolicy


class Casework:
    def __init__(self, jurisdiction: Jurisdiction, policy: SlaPolicy) -> None:
        self._jurisdiction = jurisdiction
        self._policy = policy

    # ---- events in -------------------------------------------------------------------

    async def open_case(self, tx: Transaction, envelope: Envelope) -> None:
        event = envelope.parse(ComplaintSubmitted)
        repository = CaseRepository(tx)
        if await repository.get(event.complaint_id) is not None:
            return  # the same submission relayed twice under a new event id
        start = self._policy.start_level(event.category)
        first = first_assignment(self._jurisdiction, event.location, start)
        case = Case(
            complaint_id=event.complaint_id,
            tracking_no=event.tracking_no,
            category=event.category,
            urgency=event.urgency,
            status=CaseStatus.PENDING_DISPATCH if first.pending else CaseStatus.ASSIGNED,
            level=first.assignee.level,
            assignee=first.assignee,
            supervisor=None,
            clock=1,
            returns=0,
            reopens=0,
            overdue=False,
            missed_deadlines=0,
        )
        await repository.add(case, first.place, event.submitted_at, str(envelope.correlation_id))
        await self._announce_assignment(tx, case, first.reason, causation=envelope)

    async def on_reminder_due(self, tx: Transaction, envelope: Envelope) -> None:
        event = envelope.parse(ReminderDue)
        stored = await self._current(tx, event.complaint_id, event.clock, event.stage)
        if stored is None:
            return
        case = stored.case
        await tx.emit(
            ComplaintReminded(
                complaint_id=case.complaint_id,
                tracking_no=case.tracking_no,
                assignee=case.assignee,
                supervisor=case.supervisor,
                level=case.level,
                stage=event.stage,
                due_at=event.due_at,
                overdue=event.overdue,
            ),
            key=case.complaint_id,
            causation=envelope,
        )

    async def on_deadlines_set(self, tx: Transaction, envelope: Envelope) -> None:
        """Keep the deadlines in force on the case, for the staff inbox's countdowns.

        Routing never asks escalation; a deadline for an older set of clocks is dropped.
        """
        event = envelope.parse(DeadlinesSet)
        await CaseRepository(tx).set_deadlines(
            event.complaint_id, event.clock, event.accept_due_at, event.resolve_due_at
        )

    async def on_deadline_missed(self, tx: Transaction, envelope: Envelope) -> None:
        event = envelope.parse(DeadlineMissed)
        stored = await self._current(tx, event.complaint_id, event.clock, event.stage)
        if stored is None:
            return
        before = stored.case
        repository = CaseRepository(tx)
        above = before.level.above()
        if above is None:
            after = domain.mark_overdue(before)
            await repository.save(before, after, stored.place, outcome=None)
            await repository.record(before, after, Action.MARK_OVERDUE, None, None, event.stage)
            await tx.emit(
                ComplaintOverdue(
                    complaint_id=after.complaint_id,
                    tracking_no=after.tracking_no,
                    assignee=after.assignee,
                    supervisor=after.accountable,
                    level=after.level,
                    stage=event.stage,
                    due_at=event.due_at,
                    clock=after.clock,
                ),
                key=after.complaint_id,
                causation=envelope,
            )
            return
        supervisor = self._supervisor_at(before.assignee, above)
        after = domain.escalate(before, supervisor)
        await repository.save(before, after, stored.place, outcome="escalated")
        await repository.record(before, after, Action.ESCALATE, None, None, event.stage)
        await tx.emit(
            ComplaintEscalated(
                complaint_id=after.complaint_id,
                tracking_no=after.tracking_no,
                from_level=before.level,
                level=after.level,
                supervisor=supervisor,
                assignee=after.assignee,
                cause="accept_overdue" if event.stage == Stage.ACCEPT else "resolve_overdue",
                category=after.category,
                urgency=after.urgency,
                clock=after.clock,
            ),
            key=after.complaint_id,
            causation=envelope,
        )

    async def _current(
        self, tx: Transaction, complaint_id: str, clock: int, stage: Stage
    ) -> StoredCase | None:
        """The case, if a deadline event for it still applies; None when it is stale.

        A deadline belongs to one set of clocks; once the case moved on (accepted in time,
        dispatched, escalated, resolved) that deadline has nothing left to say.
        """
        stored = await CaseRepository(tx).get(complaint_id)
        if stored is None or stored.case.clock != clock:
            return None
        status = stored.case.status
        if status in domain.FINISHED:
            return None
        if stage == Stage.ACCEPT and status not in domain.AWAITING_ACCEPT:
            return None
        return stored

    def _supervisor_at(self, assignee: Org, level: Level) -> Org:
        for org in self._jurisdiction.chain(assignee.code):
            ref = org_ref(self._jurisdiction, org.code)
            if ref is not None and ref.level == level:
                return ref
        county = org_ref(self._jurisdiction, self._jurisdiction.county.code)
        assert county is not None
        return county

    # ---- staff actions ------------------------------------------------------------

    async def act(
        self,
        tx: Transaction,
        complaint_id: str,
        action: Action,
        actor: Org,
        user: str,
        *,
        note: str | None = None,
        target_code: str | None = None,
        satisfied: bool | None = None,
    ) -> Case:
        repository = CaseRepository(tx)
        stored = await repository.get(complaint_id)
        if stored is None:
            raise Refused(404, "no complaint with this id")
        before = stored.case
        target = None
        if action == Action.DISPATCH:
            target = org_ref(self._jurisdiction, target_code or "")
            if target is None:
                raise Refused(422, f"{target_code!r} is not a village, township or county code")
        authorize(self._jurisdiction, actor, before, action, target)
        correlation = UUID(stored.correlation_id)

        async def emit(
            payload: ComplaintAccepted
            | ComplaintReplied
            | ComplaintResolved
            | ComplaintClosed
            | ComplaintReturned,
        ) -> None:
            await tx.emit(payload, key=complaint_id, correlation_id=correlation)

        outcome: str | None = None
        if action == Action.ACCEPT:
            after = domain.accept(before)
            await emit(
                ComplaintAccepted(
                    complaint_id=complaint_id, by=actor, level=after.level, clock=after.clock
                )
            )
        elif action == Action.REPLY:
            after = domain.reply(before)
            await emit(
                ComplaintReplied(
                    complaint_id=complaint_id,
                    tracking_no=after.tracking_no,
                    by=actor,
                    level=after.level,
                )
            )
        elif action == Action.RESOLVE:
            after = domain.resolve(before)
            outcome = "resolved"
            await emit(
                ComplaintResolved(
                    complaint_id=complaint_id,
                    tracking_no=after.tracking_no,
                    by=actor,
                    level=after.level,
                    on_time=after.missed_deadlines == 0,
                )
            )
        elif action == Action.VISIT:
            # No event: the visit's note is free text, and nobody downstream acts on it.
            after = domain.visit(before)
        elif action == Action.CLOSE:
            after = domain.close(before)
            await emit(ComplaintClosed(complaint_id=complaint_id, by=actor, level=after.level))
        elif action == Action.RETURN:
            counted, exhausted = domain.give_back(before, self._policy.max_returns)
            await emit(
                ComplaintReturned(
                    complaint_id=complaint_id, by=actor, level=before.level, returns=counted.returns
                )
            )
            queue = self._supervisor_at(
                before.assignee, domain.return_queue_level(counted, exhausted)
            )
            after = domain.assign(counted, queue, pending=True)
            outcome = "returned"
        elif action == Action.DISPATCH:
            assert target is not None
            after = domain.dispatch(before, target)
            outcome = "dispatched"
        else:
            raise Refused(409, f"{action.value} is not a staff action")
        await repository.save(
            before, after, stored.place, outcome=outcome, visit_satisfied=satisfied
        )
        await repository.record(before, after, action, actor.code, user, note)
        if after.clock != before.clock:
            reason: AssignReason = "dispatched" if action == Action.DISPATCH else "returned"
            await self._announce_assignment(tx, after, reason, correlation_id=correlation)
        return after

    async def reopen(
        self, tx: Transaction, complaint_id: str, causation: Envelope | None = None
    ) -> Case:
        """不满意: the same level takes it again with fresh deadlines."""
        repository = CaseRepository(tx)
        stored = await repository.get(complaint_id)
        if stored is None:
            raise Refused(404, "no complaint with this id")
        before = stored.case
        after = domain.reopen(before, self._policy.max_reopens)
        await repository.save(before, after, stored.place, outcome="reopened")
        await repository.record(before, after, Action.REOPEN, None, "citizen")
        await tx.emit(
            ComplaintReopened(
                complaint_id=complaint_id,
                tracking_no=after.tracking_no,
                assignee=after.assignee,
                level=after.level,
                reopens=after.reopens,
                category=after.category,
                urgency=after.urgency,
                clock=after.clock,
            ),
            key=complaint_id,
            causation=causation,
            correlation_id=UUID(stored.correlation_id),
        )
        return after

    async def _announce_assignment(
        self,
        tx: Transaction,
        case: Case,
        reason: AssignReason,
        *,
        causation: Envelope | None = None,
        correlation_id: UUID | None = None,
    ) -> None:
        await tx.emit(
            ComplaintAssigned(
                complaint_id=case.complaint_id,
                tracking_no=case.tracking_no,
                status="pending_dispatch"
                if case.status == CaseStatus.PENDING_DISPATCH
                else "assigned",
                assignee=case.assignee,
                level=case.level,
                reason=reason,
                category=case.category,
                urgency=case.urgency,
                clock=case.clock,
            ),
            key=case.complaint_id,
            causation=causation,
            correlation_id=correlation_id,
        )
