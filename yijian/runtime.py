"""Runs services' background work: outbox relays, consumers and time-driven ticks.

The same object drives the all-in-one process and, one service at a time, production
processes. ``drain`` runs everything to a standstill without waiting on time, which is how
tests follow a complaint through every service after moving a fake clock.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

import structlog

from yijian.bus.protocol import EventLog
from yijian.bus.relay import OutboxRelay
from yijian.service import Service

log = structlog.get_logger(__name__)


class Runtime:
    def __init__(
        self, services: Sequence[Service], event_log: EventLog, tick_seconds: float = 0.5
    ) -> None:
        self.services = list(services)
        self.event_log = event_log
        self._tick_seconds = tick_seconds
        self._relays = [OutboxRelay(service.database, event_log) for service in self.services]
        self._tasks: list[asyncio.Task[None]] = []

    async def prepare(self) -> None:
        for service in self.services:
            await service.prepare()

    def start(self) -> None:
        for relay in self._relays:
            self._tasks.append(asyncio.create_task(relay.run()))
        for service in self.services:
            for consumer in service.consumers:
                self._tasks.append(asyncio.create_task(consumer.run()))
            self._tasks.append(asyncio.create_task(self._tick_loop(service)))

    async def _tick_loop(self, service: Service) -> None:
        while True:
            try:
                await service.tick()
            except Exception:
                log.exception("tick failed; retrying", service=service.name)
            await asyncio.sleep(self._tick_seconds)

    async def stop(self) -> None:
        """Stop background work; whatever was mid-flight is redelivered on the next start."""
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
