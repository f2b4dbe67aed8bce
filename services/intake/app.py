"""Wires the intake service: its database, its consumer and its routes."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from services.intake.api import build_router
from services.intake.handlers import HANDLERS
from services.intake.store import metadata
from services.intake.submission import Submissions
from yijian.bus.consumer import Consumer
from yijian.bus.outbox import ServiceDatabase
from yijian.bus.protocol import EventLog
from yijian.clock import Clock
from yijian.contracts.events import TOPIC_CASES, TOPIC_DEADLINES
from yijian.migrate import migrate
from yijian.policy import SlaPolicy
from yijian.settings import Settings

MIGRATIONS = Path(__file__).parent / "migrations"


class IntakeService:
    name = "intake"

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
                name="intake.status",
                database=self.database,
                event_log=event_log,
                topics=[TOPIC_CASES, TOPIC_DEADLINES],
                handlers=HANDLERS,
                max_attempts=settings.consumer_max_attempts,
            )
        ]
        self.submissions = Submissions(self.database, policy.categories_named())
        self.router = build_router(self.database, self.submissions)

    async def prepare(self) -> None:
        await migrate(self.database.engine, self.database.metadata, MIGRATIONS)

    async def tick(self) -> int:
        return 0

    async def close(self) -> None:
        return None

    async def observe(self) -> None:
        return None
