"""Builds the citizen's view of a complaint from routing's and escalation's events."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import bindparam, insert, update

from services.intake.store import complaint_views, timeline
from yijian.bus.consumer import Handler
from yijian.bus.outbox import Transaction
from yijian.contracts import Envelope
from yijian.contracts.events import (
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
    DeadlinesSet,
    Stage,
)

_STAGE = {Stage.ACCEPT: "签收", Stage.RESOLVE: "办结"}
# Fixed statements, the values as parameters: compiled once, not rebuilt for every event.
_ADD_NOTE = insert(timeline)
_SET_VIEW = update(complaint_views).where(complaint_views.c.complaint_id == bindparam("view_of"))
# Only a newer clock's deadlines replace those shown (events of one complaint may be re-read).
_SET_DEADLINES = (
    update(complaint_views)
    .where(
        complaint_views.c.complaint_id == bindparam("view_of"),
        complaint_views.c.deadline_clock <= bindparam("newer_clock"),
    )
    .values(deadline_clock=bindparam("newer_clock"))
)


async def _note(tx: Transaction, envelope: Envelope, kind: str, text: str) -> None:
    await tx.connection.execute(
        _ADD_NOTE,
        {
            "complaint_id": envelope.key,
            "at": envelope.occurred_at,
            "kind": kind,
            "text": text[:200],
        },
    )


async def _set(tx: Transaction, envelope: Envelope, **values: Any) -> None:
    await tx.connection.execute(
        _SET_VIEW, {"view_of": envelope.key, "updated_at": envelope.occurred_at, **values}
    )


async def on_assigned(tx: Transaction, envelope: Envelope) -> None:
    event = envelope.parse(ComplaintAssigned)
    await _set(
        tx,
        envelope,
        status=event.status,
        level=event.level,
        assignee_code=event.assignee.code,
        assignee_name=event.assignee.name,
        supervisor_code=None,
        supervisor_name=None,
        clock=event.clock,
        overdue=False,
    )
    if event.status == "pending_dispatch":
        text = f"待分派：由{event.assignee.name}确定承办单位"
    else:
        text = f"已分派至{event.assignee.name}办理"
    await _note(tx, envelope, "assigned", text)


async def on_accepted(tx: Transaction, envelope: Envelope) -> None:
    event = envelope.parse(ComplaintAccepted)
    await _set(tx, envelope, status="accepted")
    await _note(tx, envelope, "accepted", f"{event.by.name}已签收")


async def on_replied(tx: Transaction, envelope: Envelope) -> None:
    event = envelope.parse(ComplaintReplied)
    await _set(tx, envelope, status="replied")
    await _note(tx, envelope, "replied", f"{event.by.name}已答复")


async def on_resolved(tx: Transaction, envelope: Envelope) -> None:
    event = envelope.parse(ComplaintResolved)
    await _set(tx, envelope, status="resolved")
    await _note(tx, envelope, "resolved", f"{event.by.name}已办结")


async def on_closed(tx: Transaction, envelope: Envelope) -> None:
    envelope.parse(ComplaintClosed)
    await _set(tx, envelope, status="closed")
    await _note(tx, envelope, "closed", "已归档")


async def on_returned(tx: Transaction, envelope: Envelope) -> None:
    event = envelope.parse(ComplaintReturned)
    await _note(tx, envelope, "returned", f"{event.by.name}退回，重新分派中")


async def on_escalated(tx: Transaction, envelope: Envelope) -> None:
    event = envelope.parse(ComplaintEscalated)
    await _set(
        tx,
        envelope,
        status="escalated",
        level=event.level,
        supervisor_code=event.supervisor.code,
        supervisor_name=event.supervisor.name,
        clock=event.clock,
    )
    missed = "签收" if event.cause == "accept_overdue" else "办结"
    await _note(
        tx,
        envelope,
        "escalated",
        f"{event.assignee.name}超时未{missed}，{event.supervisor.name}督办",
    )


async def on_reopened(tx: Transaction, envelope: Envelope) -> None:
    event = envelope.parse(ComplaintReopened)
    await _set(
        tx,
        envelope,
        status="reopened",
        level=event.level,
        clock=event.clock,
        reopens=event.reopens,
    )
    await _note(tx, envelope, "reopened", f"已重新交由{event.assignee.name}办理")


async def on_reminded(tx: Transaction, envelope: Envelope) -> None:
    event = envelope.parse(ComplaintReminded)
    await _note(tx, envelope, "reminded", f"已向{event.assignee.name}催办{_STAGE[event.stage]}")


async def on_overdue(tx: Transaction, envelope: Envelope) -> None:
    event = envelope.parse(ComplaintOverdue)
    await _set(tx, envelope, overdue=True)
    await _note(tx, envelope, "overdue", f"{event.supervisor.name}督办超时，持续催办")


async def on_deadlines_set(tx: Transaction, envelope: Envelope) -> None:
    event = envelope.parse(DeadlinesSet)
    await tx.connection.execute(
        _SET_DEADLINES,
        {
            "view_of": envelope.key,
            "newer_clock": event.clock,
            "accept_due_at": event.accept_due_at,
            "resolve_due_at": event.resolve_due_at,
        },
    )


HANDLERS: Mapping[str, Handler] = {
    ComplaintAssigned.TYPE: on_assigned,
    ComplaintAccepted.TYPE: on_accepted,
    ComplaintReplied.TYPE: on_replied,
    ComplaintResolved.TYPE: on_resolved,
    ComplaintClosed.TYPE: on_closed,
    ComplaintReturned.TYPE: on_returned,
    ComplaintEscalated.TYPE: on_escalated,
    ComplaintReopened.TYPE: on_reopened,
    ComplaintReminded.TYPE: on_reminded,
    ComplaintOverdue.TYPE: on_overdue,
    DeadlinesSet.TYPE: on_deadlines_set,
}
