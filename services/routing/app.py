"""Wires the routing service: the case owner."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from services.routing.api import build_router
from services.routing.casework import Casework
from services.routing.handlers import handlers
from services.routing.store import metadata
from yijian.auth import StaffTokens
from yijian.bus.consumer import Consumer
from yijian.bus.outbox import ServiceDatabase
from yijian.bus.protocol import EventLog
from yijian.clock import Clock
from yijian.contracts.events import TOPIC_DEADLINES, TOPIC_INTAKE
from yijian.jurisdiction import Jurisdiction
from yijian.migrate import migrate
from yijian.policy import SlaPolicy
from yijian.settings import Settings

MIGRATIONS = Path(__file__).parent / "migrations"


class RoutingService:
    name = "routing"

    def __init__(
        self,
        *,
        settings: Settings,
        clock: Clock,
        event_log: EventLog,
        engine: AsyncEngine,
        policy: SlaPolicy,
        jurisdiction: Jurisdiction,
        tokens: StaffTokens,
    ) -> None:
        self.database = ServiceDatabase(engine, metadata, producer=self.name, clock=clock)
        self.casework = Casework(jurisdiction, policy)
        self.tokens = tokens
        self.consumers = [
            Consumer(
                name="routing",
                database=self.database,
                event_log=event_log,
                topics=[TOPIC_INTAKE, TOPIC_DEADLINES],
                handlers=handlers(self.casework),
                max_attempts=settings.consumer_max_attempts,
            )
        ]
        self.router = build_router(self.database, self.casework, jurisdiction, self.tokens)

    async def prepare(self) -> None:
        await migrate(self.database.engine, self.database.metadata, MIGRATIONS)

    async def tick(self) -> int:
        return 0

    async def close(self) -> None:
        return None

    async def observe(self) -> None:
        return None
