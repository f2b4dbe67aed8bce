"""Wires the escalation service: its database, its consumer, its firing loop and its routes."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from services.escalation import store
from services.escalation.api import build_router
from services.escalation.firing import DeadlineFiring
from services.escalation.handlers import DeadlineHandlers
from services.escalation.store import metadata
from yijian.bus.consumer import Consumer
from yijian.bus.outbox import ServiceDatabase
from yijian.bus.protocol import EventLog
from yijian.clock import Clock
from yijian.contracts.events import TOPIC_CASES
from yijian.db import reading
from yijian.metrics import DEADLINES_PENDING
from yijian.migrate import migrate
from yijian.policy import SlaPolicy
from yijian.settings import Settings

MIGRATIONS = Path(__file__).parent / "migrations"


class EscalationService:
    """Owns deadlines: schedules them from case events and fires them from ``tick``."""

    name = "escalation"

    def __init__(
        self,
        *,
        settings: Settings,
        clock: Clock,
        event_log: EventLog,
        engine: AsyncEngine,
        policy: SlaPolicy,
    ) -> None:
        self.database = ServiceDatabase(engine, metadata, producer=self.name, clock=clock)
        self.consumers = [
            Consumer(
                name="escalation",
                database=self.database,
                event_log=event_log,
                topics=[TOPIC_CASES],
                handlers=DeadlineHandlers(policy).mapping(),
                max_attempts=settings.consumer_max_attempts,
                gather_seconds=settings.consumer_gather_ms / 1000,
            )
        ]
        self.firing = DeadlineFiring(self.database, policy)
        self.router = build_router(self.database)

    async def prepare(self) -> None:
        await migrate(self.database.engine, self.database.metadata, MIGRATIONS)

    async def tick(self) -> int:
        """Fire every deadline now due; the runtime calls it every deadline_poll_seconds."""
        return await self.firing.fire_due()

    async def observe(self) -> None:
        async with reading(self.database.engine) as connection:
            counts = await store.pending_counts(connection)
        DEADLINES_PENDING.set(sum(int(row._mapping["count"]) for row in counts))

    async def close(self) -> None:
        return None
