"""Runs one consumer group: poll, apply the events in the service's own database, commit.

Everything one poll brought is applied in one transaction: its event ids go into the
processed-event table in one statement, each new event's handler runs in order, and one commit
(one fsync on SQLite, one round trip on PostgreSQL) settles the lot. A transaction per event
cost more than everything else together: bench/transport.py went from about 400-800 events a
second to about 5,000, and a consumer draining a backlog alone to about 13,000.

When anything in that batch fails, it is rolled back whole and the same records are applied
one by one, each in its own transaction, as before batching: the failing record is singled out
and the good ones around it still apply. That careful path keeps the promises below. Per
partition, records are applied strictly in order. A record that fails is tried again on the
next poll (its partition waits; other partitions go on); after ``max_attempts`` failures it is
dead-lettered with the error and its partition moves on. A poll holding such a retry takes the
careful path at once, so attempts are counted exactly as before. A database that cannot be
reached is not the record's fault: the record waits for it, however long, and no attempt is
counted, so an outage parks nothing (a batch that meets it waits whole, without the careful
path, which would only meet it again).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping, Sequence

import structlog

from yijian.bus.outbox import AlreadyProcessed, ServiceDatabase, Transaction
from yijian.bus.protocol import Delivery, EventLog, ReportsLag
from yijian.contracts import Envelope
from yijian.db import database_unavailable
from yijian.logs import handling
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
        gather_seconds: float = 0.0,
        pause: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """``gather_seconds``: after applying a batch smaller than a full one, wait this long
        before polling again, so that what arrives meanwhile is applied as one batch, in one
        transaction, rather than one transaction each. The first event after a quiet spell is
        still applied at once. For consumers no one waits on to the millisecond (a
        notification, the deadlines, the citizen's status page): on a busy single-threaded
        ``yijian run`` their transactions took the turns of routing's assignment (at 200
        complaints a second, submit→assigned p50 42–44 → 23–32 ms; docs/performance.md,
        change 32). ``pause`` is how it waits (tests pass their own)."""
        self.name = name
        self.topics = topics
        self._database = database
        self._handlers = handlers
        self._subscription = event_log.subscribe(name, topics)
        self._max_attempts = max_attempts
        self._batch = batch
        self._gather_seconds = gather_seconds
        self._pause = pause
        self._attempts: dict[tuple[str, int, int], int] = {}
        # Set when the last poll met an unreachable database: wait before polling again.
        self._database_away = False

    async def consume_once(self, timeout: float = 0.0) -> int:
        """Poll once and apply what came; returns how many records were settled."""
        self._database_away = False
        deliveries = await self._subscription.poll(self._batch, timeout)
        settled = await self._apply_together(deliveries)
        if settled is None:
            settled = await self._apply_each(deliveries)
        await self._subscription.commit(settled)
        return len(settled)

    async def _apply_together(self, deliveries: Sequence[Delivery]) -> list[Delivery] | None:
        """The fast path: every record in one transaction; the records settled, or None when
        the batch failed and rolled back, for the careful path to single the culprit out."""
        if any((d.topic, d.partition, d.offset) in self._attempts for d in deliveries):
            return None  # a retry: its attempts are counted one record at a time
        handled = [d.envelope for d in deliveries if d.envelope.type in self._handlers]
        applied = 0
        if handled:
            try:
                applied = await self._apply_in_one_transaction(handled)
            except Exception as error:
                if database_unavailable(error):
                    self._wait_for_database(deliveries, error)
                    return []
                log.warning(
                    "batch failed; applying its events one by one",
                    consumer=self.name,
                    events=len(deliveries),
                    error=type(error).__name__,
                )
                return None
        # Counted only now that the transaction committed.
        self._count("ignored", len(deliveries) - len(handled))
        self._count("duplicate", len(handled) - applied)
        self._count("applied", applied)
        return list(deliveries)

    async def _apply_in_one_transaction(self, envelopes: Sequence[Envelope]) -> int:
        """Run each new event's handler, in order, in one transaction; how many ran."""
        async with self._database.consuming_batch(self.name, envelopes) as (tx, fresh):
            for envelope in fresh:
                with handling(self.name, envelope):
                    await self._handlers[envelope.type](tx, envelope)
        if len(fresh) < len(envelopes):
            log.debug(
                "duplicate deliveries skipped",
                consumer=self.name,
                duplicates=len(envelopes) - len(fresh),
            )
        return len(fresh)

    def _wait_for_database(self, deliveries: Sequence[Delivery], error: Exception) -> None:
        """Give every partition back from its first record in this poll, counting nothing
        against them: the whole poll is tried again once the database answers."""
        log.warning(
            "database unavailable; the events wait", consumer=self.name, error=type(error).__name__
        )
        self._database_away = True
        rewound: set[tuple[str, int]] = set()
        for delivery in deliveries:
            slot = (delivery.topic, delivery.partition)
            if slot not in rewound:  # from the first: on Kafka, a later rewind would seek past it
                rewound.add(slot)
                self._subscription.rewind(delivery)
        self._count("failed", len(rewound))  # one try per partition, as the careful path counts

    def _count(self, outcome: str, events: int) -> None:
        if events:
            EVENTS_CONSUMED.labels(self.name, outcome).inc(events)

    async def _apply_each(self, deliveries: Sequence[Delivery]) -> list[Delivery]:
        """The careful path: a transaction per record, a failing record holding its partition."""
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
        return settled

    async def _apply(self, delivery: Delivery) -> bool:
        envelope = delivery.envelope
        handler = self._handlers.get(envelope.type)
        if handler is None:
            EVENTS_CONSUMED.labels(self.name, "ignored").inc()
            return True  # not an event this consumer cares about
        with handling(self.name, envelope):
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
                settled = await self.consume_once(timeout=0 if had_failures else idle_wait)
                if self._attempts or self._database_away:
                    await asyncio.sleep(retry_wait)
                elif 0 < settled < self._batch and self._gather_seconds > 0:
                    await self._pause(self._gather_seconds)
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
