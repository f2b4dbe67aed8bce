"""Runs one consumer group: poll, apply each event in the service's own transaction, commit.

Per partition, records are applied strictly in order. A record that fails is tried again on
the next poll (its partition waits; other partitions go on); after ``max_attempts`` failures
it is dead-lettered with the error and its partition moves on. A database that cannot be
reached is not the record's fault: the record waits for it, however long, and no attempt is
counted, so an outage parks nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping

import structlog

from yijian.bus.outbox import AlreadyProcessed, ServiceDatabase, Transaction
from yijian.bus.protocol import Delivery, EventLog, ReportsLag
from yijian.contracts import Envelope
from yijian.db import database_unavailable
from yijian.metrics import EVENTS_CONSUMED

Handler = Callable[[Transaction, Envelope], Awaitable[None]]

log = structlog.get_logger(__name__)


class Consumer:
    def __init__(
        self,
        *,
        name: str,
        database: ServiceDatabase,
        event_log: EventLog,
        topics: list[str],
        handlers: Mapping[str, Handler],
        max_attempts: int = 5,
        batch: int = 200,
    ) -> None:
        self.name = name
        self.topics = topics
        self._database = database
        self._handlers = handlers
        self._subscription = event_log.subscribe(name, topics)
        self._max_attempts = max_attempts
        self._batch = batch
        self._attempts: dict[tuple[str, int, int], int] = {}
        # Set when the last poll met an unreachable database: wait before polling again.
        self._database_away = False

    async def consume_once(self, timeout: float = 0.0) -> int:
        """Poll once and apply what came; returns how many records were settled."""
        self._database_away = False
        deliveries = await self._subscription.poll(self._batch, timeout)
        settled: list[Delivery] = []
        blocked: set[tuple[str, int]] = set()
        for delivery in deliveries:
            slot = (delivery.topic, delivery.partition)
            if slot in blocked:
                continue
            if await self._apply(delivery):
                settled.append(delivery)
            else:
                blocked.add(slot)
                self._subscription.rewind(delivery)
        await self._subscription.commit(settled)
        return len(settled)

    async def _apply(self, delivery: Delivery) -> bool:
        envelope = delivery.envelope
        handler = self._handlers.get(envelope.type)
        if handler is None:
            EVENTS_CONSUMED.labels(self.name, "ignored").inc()
            return True  # not an event this consumer cares about
        # Everything logged while handling carries the complaint's correlation id.
        with structlog.contextvars.bound_contextvars(
            consumer=self.name,
            event_type=envelope.type,
            event_id=str(envelope.id),
            correlation_id=str(envelope.correlation_id),
        ):
            return await self._apply_with(handler, delivery)

    async def _apply_with(self, handler: Handler, delivery: Delivery) -> bool:
        envelope = delivery.envelope
        try:
            async with self._database.consuming(self.name, envelope) as tx:
                await handler(tx, envelope)
        except AlreadyProcessed:
            EVENTS_CONSUMED.labels(self.name, "duplicate").inc()
            log.debug("duplicate delivery skipped")
        except Exception as error:
            if database_unavailable(error):
                EVENTS_CONSUMED.labels(self.name, "failed").inc()
                log.warning("database unavailable; the event waits", error=type(error).__name__)
                self._database_away = True
                return False
            slot = (delivery.topic, delivery.partition, delivery.offset)
            attempts = self._attempts.get(slot, 0) + 1
            self._attempts[slot] = attempts
            reason = f"{type(error).__name__}: {error}"
            if attempts < self._max_attempts:
                EVENTS_CONSUMED.labels(self.name, "failed").inc()
                log.warning("event failed; will retry", attempts=attempts, error=reason)
                return False
            EVENTS_CONSUMED.labels(self.name, "dead_lettered").inc()
            log.exception("event dead-lettered", attempts=attempts, error=reason)
            await self._subscription.dead_letter(delivery, reason, attempts)
            del self._attempts[slot]
            # Settled: dead_letter committed it, and the partition goes on after it. (Rewinding
            # here would deliver the parked record again and dead-letter it once more.)
            return True
        else:
            EVENTS_CONSUMED.labels(self.name, "applied").inc()
        self._attempts.pop((delivery.topic, delivery.partition, delivery.offset), None)
        return True

    async def run(self, idle_wait: float = 1.0, retry_wait: float = 0.5) -> None:
        while True:
            try:
                had_failures = bool(self._attempts) or self._database_away
                await self.consume_once(timeout=0 if had_failures else idle_wait)
                if self._attempts or self._database_away:
                    await asyncio.sleep(retry_wait)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("consumer loop failed; retrying", consumer=self.name)
                await asyncio.sleep(retry_wait)

    async def lag(self) -> int | None:
        """Records the group has yet to consume, when the transport can tell."""
        if isinstance(self._subscription, ReportsLag):
            return await self._subscription.lag()
        return None

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self._subscription.close()
