"""Case events in → deadline rows (and the deadlines in force) out.

Every handler runs inside the consumer's transaction, so the rows it writes, the events it
emits and the record that the event was applied commit together or not at all.

Cancelling is the cautious direction: a row cancelled wrongly means a level is never reminded
or escalated, whereas a stale row that fires is re-checked by routing against the case and
dropped. So cancels are narrowed by clock number, or by start time where the event has none.
"""

from __future__ import annotations

from collections.abc import Mapping

import structlog

from services.escalation import store
from services.escalation.domain import (
    ComplaintClock,
    DeadlineKind,
    PlannedDeadline,
    as_utc,
    plan_clock,
    terms_for,
)
from yijian.bus.consumer import Handler
from yijian.bus.outbox import Transaction
from yijian.contracts import Envelope
from yijian.contracts.events import (
    ComplaintAccepted,
    ComplaintAssigned,
    ComplaintClosed,
    ComplaintEscalated,
    ComplaintOverdue,
    ComplaintReopened,
    ComplaintResolved,
    ComplaintReturned,
    DeadlinesSet,
    Stage,
)
from yijian.policy import LevelTerms, SlaPolicy

log = structlog.get_logger(__name__)

# The events that hand a complaint a fresh, numbered set of clocks at some level.
ClockStart = ComplaintAssigned | ComplaintEscalated | ComplaintReopened
# The events after which no level owes this complaint anything until a new clock starts.
_STOPPING: dict[str, type[ComplaintResolved | ComplaintClosed | ComplaintReturned]] = {
    model.TYPE: model for model in (ComplaintResolved, ComplaintClosed, ComplaintReturned)
}


class DeadlineHandlers:
    def __init__(self, policy: SlaPolicy) -> None:
        self._policy = policy

    def mapping(self) -> Mapping[str, Handler]:
        handlers: dict[str, Handler] = {
            ComplaintAssigned.TYPE: self.on_assigned,
            ComplaintEscalated.TYPE: self.on_escalated,
            ComplaintReopened.TYPE: self.on_reopened,
            ComplaintAccepted.TYPE: self.on_accepted,
            ComplaintOverdue.TYPE: self.on_overdue,
        }
        for event_type in _STOPPING:
            handlers[event_type] = self.on_stopped
        return handlers

    async def on_assigned(self, tx: Transaction, envelope: Envelope) -> None:
        await self._start_clocks(tx, envelope, envelope.parse(ComplaintAssigned))

    async def on_escalated(self, tx: Transaction, envelope: Envelope) -> None:
        await self._start_clocks(tx, envelope, envelope.parse(ComplaintEscalated))

    async def on_reopened(self, tx: Transaction, envelope: Envelope) -> None:
        await self._start_clocks(tx, envelope, envelope.parse(ComplaintReopened))

    async def _start_clocks(self, tx: Transaction, envelope: Envelope, event: ClockStart) -> None:
        connection = tx.connection
        seen = await store.highest_clock(connection, event.complaint_id)
        # Equal counts as old too: a clock number names one set of clocks, already scheduled,
        # and scheduling it again would re-arm deadlines that have fired.
        if seen is not None and event.clock <= seen:
            log.info(
                "stale clock ignored",
                complaint_id=event.complaint_id,
                clock=event.clock,
                scheduled_clock=seen,
            )
            return
        await store.cancel_pending(connection, event.complaint_id)
        self._warn_unknown_names(event.category, event.urgency)
        owner = ComplaintClock(
            complaint_id=event.complaint_id,
            clock=event.clock,
            level=event.level,
            category=event.category,
            urgency=event.urgency,
            # When it happened, not when we heard: a late delivery must not extend the time.
            started_at=as_utc(envelope.occurred_at),
            correlation_id=envelope.correlation_id,
        )
        plan = plan_clock(self._terms(owner), owner.started_at)
        await store.add_deadlines(connection, owner, plan.deadlines, tx.now)
        await store.record_clock(
            connection, event.complaint_id, event.clock, tx.now, first=seen is None
        )
        await tx.emit(
            DeadlinesSet(
                complaint_id=event.complaint_id,
                level=event.level,
                clock=event.clock,
                accept_due_at=plan.accept_due_at,
                resolve_due_at=plan.resolve_due_at,
            ),
            key=event.complaint_id,
            causation=envelope,
        )

    async def on_accepted(self, tx: Transaction, envelope: Envelope) -> None:
        event = envelope.parse(ComplaintAccepted)
        await store.cancel_pending(
            tx.connection, event.complaint_id, stage=Stage.ACCEPT, up_to_clock=event.clock
        )

    async def on_stopped(self, tx: Transaction, envelope: Envelope) -> None:
        event = envelope.parse(_STOPPING[envelope.type])
        # These events carry no clock number; a clock started after the event cannot be one
        # it meant to stop (a dead letter replayed after a reopen, say).
        await store.cancel_pending(
            tx.connection, event.complaint_id, started_by=as_utc(envelope.occurred_at)
        )

    async def on_overdue(self, tx: Transaction, envelope: Envelope) -> None:
        """The county missed a deadline: remind it again every overdue_repeat until done."""
        event = envelope.parse(ComplaintOverdue)
        connection = tx.connection
        seen = await store.highest_clock(connection, event.complaint_id)
        if seen is not None and event.clock < seen:
            return  # a newer set of clocks has replaced the one that lapsed
        if await store.has_pending_repeat(connection, event.complaint_id, event.stage):
            return
        owner = await store.clock_of(connection, event.complaint_id, event.clock)
        if owner is None:
            # We never scheduled this clock (its start was dead-lettered, say); the county
            # still needs reminding, on its default terms.
            owner = ComplaintClock(
                complaint_id=event.complaint_id,
                clock=event.clock,
                level=event.level,
                category=None,
                urgency="normal",
                started_at=as_utc(envelope.occurred_at),
                correlation_id=envelope.correlation_id,
            )
        first = as_utc(envelope.occurred_at) + self._terms(owner).overdue_repeat
        repeat = PlannedDeadline(event.stage, DeadlineKind.REPEAT, first, as_utc(event.due_at))
        await store.add_deadlines(connection, owner, [repeat], tx.now)

    def _terms(self, owner: ComplaintClock) -> LevelTerms:
        return terms_for(self._policy, owner.level, owner.category, owner.urgency)

    def _warn_unknown_names(self, category: str | None, urgency: str) -> None:
        if category is not None and category not in self._policy.categories:
            log.warning("category unknown to the SLA policy; default terms", category=category)
        if urgency not in self._policy.urgencies:
            log.warning("urgency unknown to the SLA policy; default terms", urgency=urgency)
