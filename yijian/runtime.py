"""Runs services' background work: outbox relays, consumers, time-driven ticks and gauges.

The same object drives the all-in-one process and, one service at a time, production
processes. ``drain`` runs everything to a standstill without waiting on time, which is how
tests follow a complaint through every service after moving a fake clock.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence

import structlog

from yijian.bus.protocol import EventLog
from yijian.bus.relay import OutboxRelay
from yijian.metrics import CONSUMER_LAG, OUTBOX_BACKLOG
from yijian.service import Service
from yijian.waiting import set_within

log = structlog.get_logger(__name__)


class Runtime:
    def __init__(
        self,
        services: Sequence[Service],
        event_log: EventLog,
        tick_seconds: float = 0.5,
        gauge_seconds: float = 5.0,
    ) -> None:
        self.services = list(services)
        self.event_log = event_log
        self._tick_seconds = tick_seconds
        self._gauge_seconds = gauge_seconds
        self._relays = [OutboxRelay(service.database, event_log) for service in self.services]
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()

    async def prepare(self) -> None:
        for service in self.services:
            await service.prepare()

    def start(self) -> None:
        self._stopping.clear()
        for relay in self._relays:
            self._tasks.append(asyncio.create_task(relay.run()))
        for service in self.services:
            for consumer in service.consumers:
                self._tasks.append(asyncio.create_task(consumer.run()))
            self._tasks.append(asyncio.create_task(self._every(self._tick_seconds, service.tick)))
        self._tasks.append(asyncio.create_task(self._every(self._gauge_seconds, self.observe)))

    async def _every(self, seconds: float, work: Callable[[], Awaitable[object]]) -> None:
        while not self._stopping.is_set():
            try:
                await work()
            except Exception:
                log.exception(
                    "background work failed; retrying", work=getattr(work, "__qualname__", "?")
                )
            await set_within(self._stopping, seconds)

    async def observe(self) -> None:
        """Refresh the gauges: outbox backlogs, consumer lag, and each service's own."""
        for service in self.services:
            OUTBOX_BACKLOG.labels(service.name).set(await service.database.outbox_backlog())
            for consumer in service.consumers:
                lag = await consumer.lag()
                if lag is not None:
                    CONSUMER_LAG.labels(consumer.name).set(lag)
            await service.observe()

    async def stop(self, grace_seconds: float = 5.0) -> None:
        """Stop background work, letting ticks finish their step first.

        Relays and consumers are cancelled: whatever one had in hand rolls back and is
        delivered again on the next start, so stopping never loses or doubles work.
        """
        self._stopping.set()
        for relay in self._relays:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(relay.relay_once(), grace_seconds)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        for service in self.services:
            for consumer in service.consumers:
                await consumer.close()
            await service.close()

    async def drain(self, max_rounds: int = 1000) -> int:
        """Relay, consume and tick until nothing moves; returns how much moved."""
        total = 0
        for _ in range(max_rounds):
            moved = 0
            for relay in self._relays:
                moved += await relay.relay_once()
            for service in self.services:
                for consumer in service.consumers:
                    moved += await consumer.consume_once()
                moved += await service.tick()
            if moved == 0:
                return total
            total += moved
        raise RuntimeError(f"the system did not settle in {max_rounds} rounds")
