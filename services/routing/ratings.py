"""The citizen's rating of a resolved case (``complaint.rated``), and the reopening it asks for.

不满意 sends the case back to the same level with fresh deadlines, as long as the policy's
``max_reopens`` is not used up; past it the rating is recorded and the case stays resolved
(the citizen's page said so when they rated). Every rating is kept on the case for the
satisfaction figures.
"""

from __future__ import annotations

from sqlalchemy import update

from services.routing.casework import Casework
from services.routing.domain import Refused
from services.routing.repository import CaseRepository
from services.routing.store import cases
from yijian.bus.outbox import Transaction
from yijian.contracts import Envelope
from yijian.contracts.events import CaseStatus, ComplaintRated

RATE = "rate"  # action-log entries; a reopening logs its own
REOPEN_REFUSED = "reopen_refused"


class RatingHandler:
    def __init__(self, casework: Casework) -> None:
        self._casework = casework

    async def on_rated(self, tx: Transaction, envelope: Envelope) -> None:
        event = envelope.parse(ComplaintRated)
        repository = CaseRepository(tx)
        stored = await repository.get(event.complaint_id)
        if stored is None:
            return  # intake rates only what routing resolved; nothing to attach it to
        case = stored.case
        await tx.connection.execute(
            update(cases)
            .where(cases.c.complaint_id == event.complaint_id)
            .values(rating=event.rating)
        )
        await repository.record(case, case, RATE, None, "citizen", event.rating)
        # A redelivered or late rating finds the case reopened or archived: nothing to undo.
        if event.rating != "unsatisfied" or case.status != CaseStatus.RESOLVED:
            return
        try:
            await self._casework.reopen(tx, event.complaint_id, causation=envelope)
        except Refused as refusal:  # the policy's reopenings are used up
            await repository.record(case, case, REOPEN_REFUSED, None, "citizen", refusal.reason)
