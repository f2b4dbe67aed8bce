"""Moves committed outbox rows to the event log, oldest first, so per-key order holds."""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from yijian.bus.outbox import ServiceDatabase
from yijian.bus.protocol import EventLog
from yijian.metrics import EVENTS_PRODUCED

log = structlog.get_logger(__name__)


class OutboxRelay:
    def __init__(self, database: ServiceDatabase, event_log: EventLog, batch: int = 500) -> None:
        self._database = database
        self._log = event_log
        self._batch = batch

    async def relay_once(self) -> int:
        """Publish what the outbox holds; returns how many events moved.

        Rows are deleted only after the log confirmed them, so a crash in between publishes
        them again: consumers de-duplicate on the event id.
        """
        moved = 0
        published: list[int] = []
        while True:
            # The rows published last time around go in the same transaction as this read.
            rows = await self._database.take_outbox(self._batch, forget=published)
            if not rows:
                return moved
            await self._log.publish([(topic, envelope) for _, topic, envelope in rows])
            published = [row_id for row_id, _, _ in rows]
            EVENTS_PRODUCED.labels(self._database.producer).inc(len(rows))
            moved += len(rows)

    async def run(self, idle_wait: float = 1.0) -> None:
        ready = self._database.outbox_ready
        while True:
            ready.clear()
            try:
                await self.relay_once()
            except Exception:
                log.exception("outbox relay failed; retrying", producer=self._database.producer)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ready.wait(), idle_wait)
