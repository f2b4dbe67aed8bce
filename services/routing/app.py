"""Wires the routing service: the case owner."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from fastapi import APIRouter
from sqlalchemy.ext.asyncio import AsyncEngine

from services.routing.api import build_router
from services.routing.audit import AuditLog
from services.routing.casework import Casework
from services.routing.dashboard import build_dashboard_router
from services.routing.handlers import handlers
from services.routing.intake_client import IntakeClient, IntakeLink
from services.routing.sessions import StaffSessions
from services.routing.sign_in_guard import SignInGuard
from services.routing.store import metadata
from services.routing.users import StaffDirectory
from services.routing.workbench import build_workbench
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
        self.users = StaffDirectory(engine, clock, jurisdiction)
        self.audit = AuditLog(self.database)
        self.sign_in_guard = SignInGuard(
            engine,
            clock,
            settings.auth_secret_value(),
            per_account=settings.login_failures_per_account,
            per_address=settings.login_failures_per_ip,
            window=timedelta(minutes=settings.login_lockout_minutes),
        )
        self.sessions = StaffSessions(
            self.database, tokens, self.users, jurisdiction, self.audit, self.sign_in_guard
        )
        # Every staff route checks the token and, for a signed-in one, its session.
        self.current_staff = self.sessions.staff
        # Connected to intake by the composition root (in process when all-in-one).
        self.intake = IntakeLink()
        if settings.intake_url:
            self.intake.connect(
                IntakeClient.over_http(settings.intake_url, settings.secret_value("internal_token"))
            )
        self._demo_users = settings.demo_users
        self.router = APIRouter()
        self.router.include_router(
            build_router(self.database, self.casework, jurisdiction, self.current_staff, self.audit)
        )
        self.router.include_router(self.sessions.router())
        self.router.include_router(
            build_workbench(
                self.database, jurisdiction, self.current_staff, self.audit, self.intake
            )
        )
        self.router.include_router(
            build_dashboard_router(self.database, jurisdiction, clock, self.current_staff)
        )

    async def prepare(self) -> None:
        await migrate(self.database.engine, self.database.metadata, MIGRATIONS)
        if self._demo_users:
            await self.users.seed_demo()

    async def tick(self) -> int:
        return 0

    async def close(self) -> None:
        await self.intake.close()

    async def observe(self) -> None:
        return None
