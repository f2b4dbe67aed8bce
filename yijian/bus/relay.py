"""Moves committed outbox rows to the event log, oldest first, so per-key order holds."""

from __future__ import annotations

import structlog

from yijian.bus.outbox import ServiceDatabase
from yijian.bus.protocol import EventLog
from yijian.metrics import EVENTS_PRODUCED
from yijian.waiting import set_within

log = structlog.get_logger(__name__)


class OutboxRelay:
    def __init__(self, database: ServiceDatabase, event_log: EventLog, batch: int = 500) -> None:
        self._database = database
        self._log = event_log
        self._batch = batch
        # Rows the log has confirmed and the outbox still holds: deleted in the transaction
        # of the next read, so a wake of the running relay costs one transaction, not two.
        self._confirmed: list[int] = []

    async def relay_once(self) -> int:
        """Publish what the outbox holds and delete it; returns how many events moved.

        Rows are deleted only after the log confirmed them, so a crash in between publishes
        them again: consumers de-duplicate on the event id.
        """
        return await self._move(settle=True)

    async def _move(self, *, settle: bool) -> int:
        """Publish the outbox oldest first. ``settle=False`` stops after a read that found
        less than a batch (the outbox was empty then) and leaves the rows it published for
        the next call to delete, instead of a transaction of their own."""
        moved = 0
        while True:
            rows = await self._database.take_outbox(self._batch, forget=self._confirmed)
            self._confirmed = []
            if not rows:
                return moved
            await self._log.publish([(topic, envelope) for _, topic, envelope in rows])
            self._confirmed = [row_id for row_id, _, _ in rows]
            EVENTS_PRODUCED.labels(self._database.producer).inc(len(rows))
            moved += len(rows)
            if not settle and len(rows) < self._batch:
                return moved

    async def run(self, idle_wait: float = 1.0) -> None:
        """Relay at every commit that wrote the outbox, and at least every ``idle_wait``
        seconds (which also deletes what the last wake published)."""
        ready = self._database.outbox_ready
        while True:
            ready.clear()
            try:
                await self._move(settle=False)
            except Exception:
                log.exception("outbox relay failed; retrying", producer=self._database.producer)
            await set_within(ready, idle_wait)
