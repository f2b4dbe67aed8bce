"""The all-in-one process: intake, routing, escalation and notify over the embedded log.

This is the composition root, the only place that knows every service. Each service gets
its own SQLite database; the event log gets one more. Nothing here is a mock: the same
outbox, relay and consumers run in production over Kafka and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta

from fastapi import Depends, FastAPI
from fastapi_offline import FastAPIOffline
from sqlalchemy.ext.asyncio import AsyncEngine

from services.escalation.app import EscalationService
from services.intake.app import IntakeService
from services.notify.app import NotifyService
from services.routing.app import RoutingService
from services.routing.intake_client import IntakeClient
from yijian import heap
from yijian.auth import StaffTokens, require_org
from yijian.bus.protocol import EventLog
from yijian.bus.sqllog import MIGRATIONS as EVENTLOG_MIGRATIONS
from yijian.bus.sqllog import SqlEventLog
from yijian.bus.sqllog import metadata as eventlog_metadata
from yijian.clock import Clock, SystemClock
from yijian.db import create_engine
from yijian.http import NO_OPENTELEMETRY, BodyLimit, install_error_handlers, install_security
from yijian.jurisdiction import Jurisdiction
from yijian.metrics import RequestTimer
from yijian.migrate import migrate
from yijian.openapi import document_error_bodies
from yijian.operations import database_check, operations_router
from yijian.policy import SlaPolicy
from yijian.runtime import Runtime
from yijian.service import Service
from yijian.settings import Settings

MAX_BODY_BYTES = 64 * 1024


@dataclass
class System:
    settings: Settings
    clock: Clock
    policy: SlaPolicy
    jurisdiction: Jurisdiction
    event_log: EventLog
    intake: IntakeService
    routing: RoutingService
    escalation: EscalationService
    notify: NotifyService
    runtime: Runtime

    async def prepare(self) -> None:
        if isinstance(self.event_log, SqlEventLog):
            await migrate(self.event_log.engine, eventlog_metadata, EVENTLOG_MIGRATIONS)
        await self.runtime.prepare()

    async def close(self) -> None:
        await self.runtime.stop()
        for service in self.runtime.services:
            await service.database.engine.dispose()
        await self.event_log.close()


def load_policy(settings: Settings) -> SlaPolicy:
    return SlaPolicy.load(settings.sla_policy) if settings.sla_policy else SlaPolicy.default()


def build_system(
    settings: Settings, clock: Clock | None = None, event_log: EventLog | None = None
) -> System:
    """Every service, wired to one event log: the embedded SQL log unless one is given."""
    clock = clock or SystemClock()
    policy = load_policy(settings)
    jurisdiction = Jurisdiction.load()
    if event_log is None:
        event_log = SqlEventLog(create_engine(settings.database_url("eventlog")), clock)
    tokens = StaffTokens(
        settings.auth_secret_value(),
        clock,
        timedelta(hours=settings.staff_token_ttl_hours),
        previous=settings.auth_previous_values(),
    )

    def engine(service: str) -> AsyncEngine:
        return create_engine(settings.database_url(service))

    intake = IntakeService(
        settings=settings, clock=clock, event_log=event_log, engine=engine("intake"), policy=policy
    )
    routing = RoutingService(
        settings=settings,
        clock=clock,
        event_log=event_log,
        engine=engine("routing"),
        policy=policy,
        jurisdiction=jurisdiction,
        tokens=tokens,
    )
    escalation = EscalationService(
        settings=settings,
        clock=clock,
        event_log=event_log,
        engine=engine("escalation"),
        policy=policy,
    )
    notify = NotifyService(
        settings=settings,
        clock=clock,
        event_log=event_log,
        engine=engine("notify"),
        jurisdiction=jurisdiction,
    )
    runtime = Runtime(
        [intake, routing, escalation, notify], event_log, settings.deadline_poll_seconds
    )
    return System(
        settings,
        clock,
        policy,
        jurisdiction,
        event_log,
        intake,
        routing,
        escalation,
        notify,
        runtime,
    )


def create_app(system: System, *, background: bool = True, settle_heap: bool = False) -> FastAPI:
    """The HTTP app. ``background=False`` leaves the loops to a test that drains by hand;
    ``settle_heap`` tunes the garbage collector once started (yijian/heap.py), for the
    long-running process only."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await system.prepare()
        if background:
            system.runtime.start()
        if settle_heap:
            heap.settle()
        try:
            yield
        finally:
            await system.close()

    app = FastAPIOffline(
        title="yijian 一键",
        version="0.1.0",
        description="Citizens' complaints, routed to the village that owns the place and held "
        "to deadlines by the township and the county.",
        lifespan=lifespan,
        telemetry=NO_OPENTELEMETRY,
    )
    install_error_handlers(app)
    document_error_bodies(app)
    for service in system.runtime.services:
        include_service_routes(app, system, service)
    checks = {s.name: database_check(s.database.engine) for s in system.runtime.services}
    if isinstance(system.event_log, SqlEventLog):
        checks["eventlog"] = database_check(system.event_log.engine)
    app.include_router(operations_router(checks))
    app.add_middleware(RequestTimer)
    app.add_middleware(BodyLimit, max_bytes=MAX_BODY_BYTES, larger=system.intake.larger_bodies)
    install_security(app, open_prefixes=system.intake.open_to_other_sites)
    if not system.routing.intake.connected:
        # All in one process: routing reads intake's internal API through this same app.
        token = system.settings.secret_value("internal_token")
        system.routing.intake.connect(IntakeClient.in_process(app, token))
    wechat = system.notify.wechat
    if wechat is not None and not wechat.recipients.connected:
        # Likewise notify asks intake, at send time, which WeChat user gets a message.
        wechat.recipients.connect_in_process(app)
    return app


def include_service_routes(app: FastAPI, system: System, service: Service) -> None:
    """Add a service's routes; the ops views of escalation and notify are county-only.

    They hold no personal data, but they show every complaint's deadlines and messages.
    """
    if service.name in {"escalation", "notify"}:
        county_only = require_org(
            system.routing.tokens,
            system.jurisdiction.county.code,
            "only county platform operators may see the operations views",
            current=system.routing.current_staff,
        )
        app.include_router(service.router, dependencies=[Depends(county_only)])
    else:
        app.include_router(service.router)


def app_from_environment() -> FastAPI:
    """Uvicorn's factory for ``yijian run``."""
    settings = Settings()
    return create_app(build_system(settings), settle_heap=True)
