"""Events in → pending deliveries out, inside the consumer's transaction.

Handlers never send: they only decide who is told what and insert the rows, so a message
exists exactly when the event that caused it was applied. ``tick()`` sends them later.
"""

from __future__ import annotations

from collections.abc import Mapping

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from services.notify import store, templates
from services.notify.templates import Message
from yijian.bus.consumer import Handler
from yijian.bus.outbox import Transaction
from yijian.contracts import Envelope
from yijian.contracts.events import (
    ComplaintAssigned,
    ComplaintEscalated,
    ComplaintOverdue,
    ComplaintReminded,
    ComplaintReplied,
    ComplaintResolved,
    ComplaintSubmitted,
    Org,
    Stage,
)

log = structlog.get_logger(__name__)

_CAUSE_STAGE = {"accept_overdue": Stage.ACCEPT, "resolve_overdue": Stage.RESOLVE}


class NotifyHandlers:
    def __init__(self, *, citizen_channel: str, wechat_channel: str | None = None) -> None:
        # The channel a new citizen subscription gets; org recipients carry their own.
        self._citizen_channel = citizen_channel
        # Complaints filed through the mini-program are answered there, when it is set up.
        self._wechat_channel = wechat_channel

    def by_type(self) -> Mapping[str, Handler]:
        return {
            ComplaintSubmitted.TYPE: self.on_submitted,
            ComplaintAssigned.TYPE: self.on_assigned,
            ComplaintEscalated.TYPE: self.on_escalated,
            ComplaintReminded.TYPE: self.on_reminded,
            ComplaintOverdue.TYPE: self.on_overdue,
            ComplaintReplied.TYPE: self.on_replied,
            ComplaintResolved.TYPE: self.on_resolved,
        }

    async def on_submitted(self, tx: Transaction, envelope: Envelope) -> None:
        event = envelope.parse(ComplaintSubmitted)
        if not event.has_contact:
            return  # nobody to tell: the citizen chose to stay unreachable
        channel = self._citizen_channel
        if event.channel == "wechat" and self._wechat_channel is not None:
            channel = self._wechat_channel
        await store.subscribe_citizen(
            tx.connection,
            complaint_id=event.complaint_id,
            tracking_no=event.tracking_no,
            channel=channel,
            now=tx.now,
        )

    async def on_assigned(self, tx: Transaction, envelope: Envelope) -> None:
        event = envelope.parse(ComplaintAssigned)
        no, org_name = event.tracking_no, event.assignee.name
        if event.status == "pending_dispatch":
            message = templates.dispatch_queue(tracking_no=no, org_name=org_name, level=event.level)
        else:
            message = templates.new_assignment(tracking_no=no, org_name=org_name, level=event.level)
        outgoing = await _to_org(tx.connection, event.assignee, message, envelope)
        if event.status == "assigned":
            # A dispatch queue is no answer for the citizen yet; they hear once a real handler
            # has the case (the later 'dispatched' assignment).
            outgoing += await _to_citizen(
                tx.connection,
                event.complaint_id,
                templates.citizen_assigned(tracking_no=no, org_name=org_name),
            )
        await _record(tx, envelope, event.complaint_id, no, outgoing)

    async def on_escalated(self, tx: Transaction, envelope: Envelope) -> None:
        event = envelope.parse(ComplaintEscalated)
        stage = _CAUSE_STAGE[event.cause]
        to_supervisor = templates.supervision(
            tracking_no=event.tracking_no,
            supervisor_name=event.supervisor.name,
            level=event.level,
            assignee_name=event.assignee.name,
            from_level=event.from_level,
            stage=stage,
        )
        to_assignee = templates.under_supervision(
            tracking_no=event.tracking_no,
            assignee_name=event.assignee.name,
            supervisor_name=event.supervisor.name,
            level=event.level,
            stage=stage,
        )
        outgoing = await _to_org(tx.connection, event.supervisor, to_supervisor, envelope)
        outgoing += await _to_org(tx.connection, event.assignee, to_assignee, envelope)
        await _record(tx, envelope, event.complaint_id, event.tracking_no, outgoing)

    async def on_reminded(self, tx: Transaction, envelope: Envelope) -> None:
        event = envelope.parse(ComplaintReminded)
        message = templates.reminder(
            tracking_no=event.tracking_no,
            assignee_name=event.assignee.name,
            stage=event.stage,
            due_at=event.due_at,
            overdue=event.overdue,
        )
        outgoing = await _to_org(tx.connection, event.assignee, message, envelope)
        if event.supervisor is not None:
            # The supervisor gets the same 催办 so it can chase the assignee itself.
            outgoing += await _to_org(tx.connection, event.supervisor, message, envelope)
        await _record(tx, envelope, event.complaint_id, event.tracking_no, outgoing)

    async def on_overdue(self, tx: Transaction, envelope: Envelope) -> None:
        event = envelope.parse(ComplaintOverdue)
        message = templates.county_overdue(
            tracking_no=event.tracking_no,
            assignee_name=event.assignee.name,
            stage=event.stage,
            due_at=event.due_at,
        )
        outgoing = await _to_org(tx.connection, event.supervisor, message, envelope)
        await _record(tx, envelope, event.complaint_id, event.tracking_no, outgoing)

    async def on_replied(self, tx: Transaction, envelope: Envelope) -> None:
        event = envelope.parse(ComplaintReplied)
        message = templates.citizen_replied(tracking_no=event.tracking_no, org_name=event.by.name)
        outgoing = await _to_citizen(tx.connection, event.complaint_id, message)
        await _record(tx, envelope, event.complaint_id, event.tracking_no, outgoing)

    async def on_resolved(self, tx: Transaction, envelope: Envelope) -> None:
        event = envelope.parse(ComplaintResolved)
        message = templates.citizen_resolved(tracking_no=event.tracking_no)
        outgoing = await _to_citizen(tx.connection, event.complaint_id, message)
        await _record(tx, envelope, event.complaint_id, event.tracking_no, outgoing)


async def _to_org(
    connection: AsyncConnection, org: Org, message: Message, envelope: Envelope
) -> list[store.Outgoing]:
    recipients = await store.recipients_of(connection, org.code)
    if not recipients:
        # Failing the event would only park it in the dead-letter store; the org is missing
        # from the directory, which an operator fixes there, so say so loudly and go on.
        log.warning(
            "no recipient for org",
            org_code=org.code,
            template=message.template,
            event_id=str(envelope.id),
        )
    return [store.Outgoing(r.key, r.channel, message.template, message.text) for r in recipients]


async def _to_citizen(
    connection: AsyncConnection, complaint_id: str, message: Message
) -> list[store.Outgoing]:
    # Intake and case events travel on different topics, so in rare cases (intake's
    # partition held back by retries) a case event can be applied before the submission
    # that subscribed the citizen; that citizen then misses this one notice.
    subscription = await store.citizen_subscription(connection, complaint_id)
    if subscription is None:
        return []
    return [
        store.Outgoing(
            subscription.recipient_key, subscription.channel, message.template, message.text
        )
    ]


async def _record(
    tx: Transaction,
    envelope: Envelope,
    complaint_id: str,
    tracking_no: str,
    outgoing: list[store.Outgoing],
) -> None:
    await store.add_deliveries(
        tx.connection,
        event_id=str(envelope.id),
        complaint_id=complaint_id,
        tracking_no=tracking_no,
        outgoing=outgoing,
        now=tx.now,
    )
