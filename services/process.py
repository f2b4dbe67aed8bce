"""One service per process: the production shape (``yijian serve NAME``, ``make up``).

The services are wired exactly as in the all-in-one process (``services.embedded``), then
only the named one is prepared, started and served. Its database is its own
(``YIJIAN_<NAME>_DATABASE_URL``); the event log is Kafka when ``YIJIAN_BUS=kafka``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from services.embedded import MAX_BODY_BYTES, System, build_system, include_service_routes
from yijian import heap
from yijian.bus.protocol import EventLog
from yijian.bus.sqllog import MIGRATIONS as EVENTLOG_MIGRATIONS
from yijian.bus.sqllog import SqlEventLog
from yijian.bus.sqllog import metadata as eventlog_metadata
from yijian.clock import Clock, FileClock, SystemClock
from yijian.contracts.events import TOPIC_CASES, TOPIC_DEADLINES, TOPIC_INTAKE
from yijian.db import create_engine
from yijian.http import NO_OPENTELEMETRY, BodyLimit, install_error_handlers, install_security
from yijian.metrics import RequestTimer
from yijian.migrate import migrate
from yijian.openapi import document_error_bodies
from yijian.operations import Check, database_check, operations_router
from yijian.runtime import Runtime
from yijian.service import Service
from yijian.settings import SERVICES, Settings


def build_event_log(settings: Settings, clock: Clock, service: str) -> EventLog:
    if settings.bus == "kafka":
        from yijian.bus.kafka import KafkaEventLog  # only production needs aiokafka loaded

        log: EventLog = KafkaEventLog.from_settings(settings, role=service)
        return log
    return SqlEventLog(create_engine(settings.database_url("eventlog")), clock)


def build_clock(settings: Settings) -> Clock:
    if settings.clock_file is None:
        return SystemClock()
    structlog.get_logger(__name__).warning(
        "reading the time from a file: for tests only", clock_file=str(settings.clock_file)
    )
    return FileClock(settings.clock_file)


def service_named(system: System, name: str) -> Service:
    services: dict[str, Service] = {s.name: s for s in system.runtime.services}
    if name not in services:
        raise ValueError(f"no service {name!r}; choose one of {', '.join(SERVICES)}")
    return services[name]


def event_log_check(event_log: EventLog) -> Check:
    if isinstance(event_log, SqlEventLog):
        return database_check(event_log.engine)
    from yijian.bus.kafka import KafkaEventLog

    assert isinstance(event_log, KafkaEventLog)
    topics = [event_log.physical(t) for t in (TOPIC_INTAKE, TOPIC_CASES, TOPIC_DEADLINES)]

    async def kafka_answers() -> None:
        # The broker answers and the topics exist: a fresh cluster without them is not ready.
        found = await asyncio.wait_for(event_log.partitions(topics), 5)
        if {partition.topic for partition in found} != set(topics):
            raise LookupError("topics missing: run `yijian kafka apply-topics`")

    return kafka_answers


def create_service_app(name: str, settings: Settings, *, settle_heap: bool = False) -> FastAPI:
    """One service's app; ``settle_heap`` as in ``services.embedded.create_app``."""
    clock = build_clock(settings)
    system = build_system(settings, clock, build_event_log(settings, clock, name))
    service = service_named(system, name)
    runtime = Runtime([service], system.event_log, settings.deadline_poll_seconds)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if isinstance(system.event_log, SqlEventLog):
            await migrate(system.event_log.engine, eventlog_metadata, EVENTLOG_MIGRATIONS)
        await runtime.prepare()
        runtime.start()
        if settle_heap:
            heap.settle()
        try:
            yield
        finally:
            # SIGTERM lands here after uvicorn stopped taking requests and finished those in
            # flight: the loops stop, the outbox is flushed once more, then connections close.
            await runtime.stop()
            await service.database.engine.dispose()
            await system.event_log.close()

    app = FastAPIOffline(
        title=f"yijian {name}", version="0.1.0", lifespan=lifespan, telemetry=NO_OPENTELEMETRY
    )
    install_error_handlers(app)
    document_error_bodies(app)
    include_service_routes(app, system, service)
    checks: dict[str, Check] = {name: database_check(service.database.engine)}
    checks["eventlog" if isinstance(system.event_log, SqlEventLog) else "kafka"] = event_log_check(
        system.event_log
    )
    app.include_router(operations_router(checks))
    app.add_middleware(RequestTimer)
    app.add_middleware(BodyLimit, max_bytes=MAX_BODY_BYTES, larger=system.intake.larger_bodies)
    install_security(app, open_prefixes=system.intake.open_to_other_sites)
    return app
