"""Outages under load in the production shape: Kafka stopped, PostgreSQL stopped, and each
service killed with SIGKILL in turn.

One set-up (four processes, their own databases and topics) serves the module; each test files
its own complaints and the checker (tests/faults/checker.py) counts only those. The tables are
printed (``pytest -s``) and kept under test-artifacts/faults/.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import func, select

from deploy.local.stack import LocalKafka, LocalPostgres
from services.escalation.store import deadlines
from services.intake.store import metadata as intake_tables
from services.notify.store import deliveries
from services.routing.store import case_actions
from tests.faults.checker import Figures, settled
from tests.faults.citizens import VILLAGE, Citizens
from tests.faults.outages import start_postgres, stop_postgres
from tests.faults.probes import (
    SOAK_MARKS,
    count,
    eventually,
    in_thread,
    metric,
    readiness,
    report,
    sign_in,
    until,
)
from tests.faults.production import FaultyProduction, production_on
from tests.integration.production import SERVICES

pytestmark = pytest.mark.integration

# As production_env sets it: how often one event may fail before it is dead-lettered.
MAX_ATTEMPTS = 5
COMPLAINT = {
    "description": "村口路灯坏了",
    "location": {"village_code": VILLAGE},
    "category": "道路交通",
}
# The village has two hours to accept (yijian/policies/default.toml); a minute more lapses it.
VILLAGE_LAPSES = timedelta(hours=2, minutes=1)


@pytest.fixture(scope="module")
def production(
    tmp_path_factory: pytest.TempPathFactory,
    local_kafka: LocalKafka,
    local_postgres: LocalPostgres,
) -> Iterator[FaultyProduction]:
    folder = tmp_path_factory.mktemp("outages")
    with production_on(folder, bootstrap=local_kafka.bootstrap, postgres=local_postgres) as system:
        yield system


async def test_kafka_stopped_intake_keeps_acknowledging_and_nothing_is_lost(
    production: FaultyProduction, local_kafka: LocalKafka
) -> None:
    citizens = Citizens(lambda: production.url("intake"))
    citizens.start()
    async with httpx.AsyncClient(timeout=15) as client:
        try:
            await until(lambda: len(citizens.acknowledged) >= 10, "complaints before the outage")
            await in_thread(local_kafka.stop)
            try:

                async def kafka_reported_down() -> dict[str, str] | None:
                    status, body = await readiness(client, production.url("intake"))
                    down = status == 503 and body["checks"]["kafka"] != "ok"
                    return body["checks"] if down else None

                checks = await eventually(kafka_reported_down, "intake's /readyz to fail on Kafka")
                assert checks["intake"] == "ok", checks  # its own database is fine
                during = len(citizens.acknowledged)
                await until(
                    lambda: len(citizens.acknowledged) >= during + 20,
                    "complaints acknowledged while Kafka is stopped",
                )
                acknowledged_while_down = len(citizens.acknowledged) - during
            finally:
                await in_thread(local_kafka.start)
            for service in SERVICES:
                await production.wait_ready(client, service)
        finally:
            await citizens.stop()
    figures = await settled(production.service_databases, citizens.acknowledged, timeout=240)
    report(
        "Kafka stopped under load",
        figures,
        acknowledged_while_kafka_was_stopped=acknowledged_while_down,
        failed_attempts=dict(citizens.refused),
    )
    assert not citizens.refused, f"intake failed while Kafka was stopped: {citizens.refused}"
    assert figures.sound, figures.table()


async def test_postgres_stopped_answers_503_and_resumes_without_a_restart(
    production: FaultyProduction, local_postgres: LocalPostgres
) -> None:
    databases = production.service_databases
    citizens = Citizens(lambda: production.url("intake"))
    intake, routing = production.url("intake"), production.url("routing")
    outbox = intake_tables.tables["outbox"]
    async with httpx.AsyncClient(timeout=30) as client:
        staff = await sign_in(client, routing, VILLAGE)
        [opened] = await citizens.file(1)
        assert (await settled(databases, [opened], timeout=60)).lost == 0
        citizen = {"Authorization": f"Bearer {citizens.tokens[opened]}"}
        processes = {name: process.pid for name, process in production.processes.items()}
        # Complaints on their way to routing when the database goes: routing is frozen while
        # they are filed, so they wait in Kafka and meet the outage when it thaws.
        production.freeze("routing")
        try:
            in_flight = await citizens.file(20)

            async def relayed() -> bool:
                return await count(databases.intake, select(func.count()).select_from(outbox)) == 0

            await eventually(relayed, "intake's outbox to reach Kafka")
            await in_thread(lambda: stop_postgres(local_postgres))
        finally:
            production.thaw("routing")
        try:
            answers = {
                "intake: file a complaint": await client.post(
                    f"{intake}/api/v1/complaints", json=COMPLAINT
                ),
                "intake: the citizen's view": await client.get(
                    f"{intake}/api/v1/complaints/{opened}", headers=citizen
                ),
                "routing: staff accept": await client.post(
                    f"{routing}/api/v1/complaints/{opened}/accept", headers=staff
                ),
            }
            for what, answer in answers.items():
                assert answer.status_code == 503, f"{what}: {answer.status_code} {answer.text}"
                assert answer.headers.get("Retry-After", "").isdigit(), what
                assert answer.json()["detail"], what
            for service in SERVICES:
                status, body = await readiness(client, production.url(service))
                assert status == 503, (service, body)
                assert body["checks"][service] != "ok", (service, body)

            async def routing_kept_trying() -> bool:
                failed = await metric(
                    client,
                    routing,
                    "yijian_events_consumed_total",
                    consumer="routing",
                    outcome="failed",
                )
                return failed >= 2 * MAX_ATTEMPTS

            # Had the outage counted as the events' fault, one would be dead-lettered by now.
            await eventually(routing_kept_trying, "routing to retry through the outage")
        finally:
            await in_thread(lambda: start_postgres(local_postgres))

        later = await citizens.file(3)  # retried through any 503 until PostgreSQL answers
        accepted = await client.post(f"{routing}/api/v1/complaints/{opened}/accept", headers=staff)
        assert accepted.status_code == 200, accepted.text
        view = await client.get(f"{intake}/api/v1/complaints/{opened}", headers=citizen)
        assert view.status_code == 200, view.text
        for service in SERVICES:
            await production.wait_ready(client, service)
        dead_lettered = await metric(
            client,
            routing,
            "yijian_events_consumed_total",
            consumer="routing",
            outcome="dead_lettered",
        )
    # The same processes served before, during and after: nothing was restarted.
    assert {name: process.pid for name, process in production.processes.items()} == processes
    assert all(process.poll() is None for process in production.processes.values())
    figures = await settled(databases, [opened, *in_flight, *later], timeout=120)
    report("PostgreSQL stopped", figures, failed_attempts=dict(citizens.refused))
    assert set(citizens.refused) <= {"503"}, citizens.refused
    assert dead_lettered == 0
    assert figures.sound, figures.table()


# How to tell each service is in the middle of its work, for this test's complaints: the
# moment to kill it. Intake is always busy while citizens file.
Progress = Callable[[FaultyProduction, list[str]], Awaitable[bool]]


async def _filing(production: FaultyProduction, due: list[str]) -> bool:
    return True


async def _escalating(production: FaultyProduction, due: list[str]) -> bool:
    query = select(func.count()).where(
        case_actions.c.action == "escalate", case_actions.c.complaint_id.in_(due)
    )
    return await count(production.service_databases.routing, query) > 0


async def _firing(production: FaultyProduction, due: list[str]) -> bool:
    query = select(func.count()).where(
        deadlines.c.state == "fired",
        deadlines.c.kind == "due",
        deadlines.c.complaint_id.in_(due),
    )
    return await count(production.service_databases.escalation, query) > 0


async def _notifying(production: FaultyProduction, due: list[str]) -> bool:
    query = select(func.count()).where(
        deliveries.c.template == "supervision", deliveries.c.complaint_id.in_(due)
    )
    return await count(production.service_databases.notify, query) > 0


BUSY: dict[str, Progress] = {
    "intake": _filing,
    "routing": _escalating,
    "escalation": _firing,
    "notify": _notifying,
}


# Escalation's by default: deadlines firing once in effect is its promise, and routing's
# kill has its own test (test_production_shape.py); the other three under ``make soak``.
@pytest.mark.parametrize(
    "service", [pytest.param(s, marks=() if s == "escalation" else SOAK_MARKS) for s in SERVICES]
)
async def test_sigkill_under_load_loses_nothing_and_repeats_nothing(
    production: FaultyProduction, service: str
) -> None:
    databases = production.service_databases
    citizens = Citizens(lambda: production.url("intake"))
    citizens.start()
    async with httpx.AsyncClient(timeout=15) as client:
        try:
            await until(lambda: len(citizens.acknowledged) >= 15, "complaints before the kill")
            due = list(citizens.acknowledged)
            # Scheduled everywhere first, so moving the clock makes each one's deadline lapse.
            assert (await settled(databases, due, timeout=120)).lost == 0
            production.advance(VILLAGE_LAPSES)

            async def busy() -> bool:
                return await BUSY[service](production, due)

            await eventually(busy, f"{service} to be at work", timeout=60)
            production.kill(service)
            before = len(citizens.acknowledged), sum(citizens.refused.values())
            if service == "intake":
                await until(lambda: sum(citizens.refused.values()) >= before[1] + 4, "refusals")
            else:
                await until(lambda: len(citizens.acknowledged) >= before[0] + 10, "more filed")
            production.start(service)
            await production.wait_ready(client, service)
            restarted = len(citizens.acknowledged)
            await until(lambda: len(citizens.acknowledged) >= restarted + 5, "filing after")
        finally:
            await citizens.stop()

    def finished(figures: Figures) -> bool:
        return figures.lost == 0 and figures.escalated >= len(due)

    figures = await settled(databases, citizens.acknowledged, timeout=240, ready=finished)
    report(
        f"SIGKILL {service} under load",
        figures,
        lapsed_before_the_kill=len(due),
        failed_attempts=dict(citizens.refused),
        acknowledged_on_a_retry=citizens.replayed,
    )
    assert figures.escalated >= len(due), figures.table()
    assert figures.sound, figures.table()
