"""The foundation's promises in the production shape: four processes, Kafka, PostgreSQL.

- a complaint climbs village → township → county, reminded before each deadline;
- routing killed with SIGKILL mid-stream and restarted: every acknowledged complaint is
  assigned exactly once;
- the Kafka broker restarted under traffic: the services recover by themselves, nothing lost.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import create_async_engine

from services.routing.store import cases, level_stints
from tests.integration.conftest import ROOT, LocalKafka, NewDatabase
from tests.integration.production import (
    SERVICES,
    Production,
    eventually,
    json_of,
    production_env,
)
from yijian.bus.topics import load_catalog

# Monday 2026-03-02 09:00 in Beijing: an ordinary working day for every calendar.
MONDAY_MORNING = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
VILLAGE = "620922100001"


@pytest.fixture
async def production(
    tmp_path: Path, local_kafka: LocalKafka, new_postgres_database: NewDatabase
) -> AsyncIterator[Production]:
    databases = {service: await new_postgres_database() for service in SERVICES}
    clock_file = tmp_path / "clock"
    ports = {service: _port() for service in SERVICES}
    prefix = f"t{uuid.uuid4().hex[:8]}."
    env = production_env(
        bootstrap=local_kafka.bootstrap,
        databases=databases,
        data_dir=tmp_path / "data",
        clock_file=clock_file,
        ports=ports,
        topic_prefix=prefix,
    )
    # This test's own topics, so tests never read each other's events.
    topics = await asyncio.create_subprocess_exec(
        str(ROOT / ".venv" / "bin" / "yijian"), "kafka", "apply-topics", env=env
    )
    assert await asyncio.wait_for(topics.wait(), 120) == 0
    system = Production(
        env=env, logs=tmp_path, clock_file=clock_file, now=MONDAY_MORNING, databases=databases
    )
    system.ports.update(ports)
    system.set_clock(MONDAY_MORNING)
    async with httpx.AsyncClient(timeout=10) as client:
        for service in SERVICES:
            system.start(service)
        for service in SERVICES:
            await system.wait_ready(client, service)
        try:
            yield system
        finally:
            system.stop_all()


def _port() -> int:
    from tests.integration.conftest import free_port

    return free_port()


# Personal data the citizen gives; it must never reach a topic or a log.
PHONE = "13987654321"
NAME = "欧阳测试"
ADDRESS = "幸福路七号院"


async def submit(client: httpx.AsyncClient, system: Production, n: int = 0) -> dict[str, Any]:
    body = {
        "description": f"村口路灯坏了 #{n}",
        "location": {"village_code": VILLAGE, "address": ADDRESS},
        "category": "道路交通",
        "contact": {"name": NAME, "phone": f"{PHONE[:-3]}{n % 1000:03d}"},
    }
    answer = await client.post(
        f"{system.url('intake')}/api/v1/complaints",
        json=body,
        headers={"Idempotency-Key": f"production-test-{n}"},
    )
    assert answer.status_code == 201, answer.text
    result: dict[str, Any] = answer.json()
    return result


async def view(
    client: httpx.AsyncClient, system: Production, submitted: dict[str, Any]
) -> dict[str, Any]:
    answer = await client.get(
        f"{system.url('intake')}/api/v1/complaints/{submitted['id']}",
        headers={"X-Citizen-Token": submitted["citizen_token"]},
    )
    result: dict[str, Any] = json_of(answer)
    return result


def kinds(complaint: dict[str, Any]) -> list[str]:
    return [entry["kind"] for entry in complaint["timeline"]]


async def test_unanswered_complaint_climbs_across_processes(production: Production) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        submitted = await submit(client, production)

        async def assigned() -> dict[str, Any] | None:
            complaint = await view(client, production, submitted)
            return complaint if complaint["status"] == "assigned" else None

        complaint = await eventually(assigned, "the village assignment")
        assert complaint["assignee"]["code"] == VILLAGE

        production.advance(timedelta(minutes=91))  # 30 min before the village's deadline

        async def reminded() -> dict[str, Any] | None:
            complaint = await view(client, production, submitted)
            return complaint if "reminded" in kinds(complaint) else None

        await eventually(reminded, "the village's reminder")

        production.advance(timedelta(minutes=30))

        async def at(level: str) -> dict[str, Any] | None:
            complaint = await view(client, production, submitted)
            return complaint if complaint["level"] == level else None

        complaint = await eventually(lambda: at("township"), "township supervision")
        assert complaint["status"] == "escalated"
        assert complaint["assignee"]["code"] == VILLAGE

        production.advance(timedelta(hours=4, minutes=1))
        complaint = await eventually(lambda: at("county"), "county supervision")
        assert kinds(complaint).count("reminded") == 2
        assert kinds(complaint).count("escalated") == 2

    # The whole life went through Kafka and four logs: none holds what identifies the citizen.
    records = await every_record(production)
    assert len(records) >= 10, "the complaint's events should be on the topics"
    for personal in (PHONE[:-3], NAME, ADDRESS):
        assert not [r for r in records if personal.encode() in r], personal
        for log in production.logs.glob("*.log"):
            assert personal not in log.read_text(errors="replace"), (personal, log.name)
    # A caller's network address is theirs too: no access log lines ('127.0.0.1:51234 - "GET').
    for log in production.logs.glob("*.log"):
        assert not re.search(r'\d:\d+ - "', log.read_text(errors="replace")), log.name


async def every_record(system: Production) -> list[bytes]:
    """Every record on this test's topics, dead-letter topics too: key, value and headers."""
    prefix = system.env["YIJIAN_KAFKA_TOPIC_PREFIX"]
    names = [prefix + topic.name for topic in load_catalog(profile="local").topics]
    consumer = AIOKafkaConsumer(
        *names,
        bootstrap_servers=system.env["YIJIAN_KAFKA_BOOTSTRAP"],
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        batches = await consumer.getmany(timeout_ms=5000)
        found: list[bytes] = []
        while batches:
            for batch in batches.values():
                for record in batch:
                    headers = b"".join(value or b"" for _, value in record.headers)
                    found.append((record.key or b"") + (record.value or b"") + headers)
            batches = await consumer.getmany(timeout_ms=1000)
        return found
    finally:
        await consumer.stop()


async def _assigned_counts(routing_database: str) -> tuple[int, int]:
    engine = create_async_engine(routing_database)
    try:
        async with engine.connect() as connection:
            case_count = await connection.scalar(select(func.count()).select_from(cases))
            # Both counts in one statement, so a stint written between two reads cannot look
            # like a complaint assigned twice.
            row = (
                await connection.execute(
                    select(
                        func.count(func.distinct(level_stints.c.complaint_id)),
                        func.count(),
                    ).select_from(level_stints)
                )
            ).one()
            first_stints, all_stints = row[0], row[1]
    finally:
        await engine.dispose()
    assert first_stints == all_stints, "a complaint was assigned twice"
    return int(case_count or 0), int(all_stints or 0)


async def test_routing_killed_mid_stream_assigns_every_complaint_once(
    production: Production,
) -> None:
    total = 120
    routing_database = production.databases["routing"]
    async with httpx.AsyncClient(timeout=10) as client:
        acknowledged = [await submit(client, production, n) for n in range(total // 2)]
        production.kill("routing")
        acknowledged += [await submit(client, production, n) for n in range(total // 2, total)]
        production.start("routing")
        await production.wait_ready(client, "routing")

        async def all_assigned() -> bool:
            count, _ = await _assigned_counts(routing_database)
            return count == total

        await eventually(all_assigned, f"all {total} complaints to be assigned", timeout=120)
        assert len({c["id"] for c in acknowledged}) == total
        count, stints = await _assigned_counts(routing_database)
        assert (count, stints) == (total, total)


async def test_broker_restart_under_traffic_loses_nothing(
    production: Production, local_kafka: LocalKafka
) -> None:
    total = 60
    routing_database = production.databases["routing"]
    async with httpx.AsyncClient(timeout=10) as client:
        acknowledged = [await submit(client, production, n) for n in range(total // 3)]
        stopping = asyncio.get_running_loop().run_in_executor(None, local_kafka.restart)
        # Intake keeps answering 201 while Kafka is away: the outbox holds the events.
        acknowledged += [await submit(client, production, n) for n in range(total // 3, total)]
        await stopping

        async def all_assigned() -> bool:
            count, _ = await _assigned_counts(routing_database)
            return count == total

        await eventually(all_assigned, f"all {total} complaints after the restart", timeout=180)
        assert len({c["id"] for c in acknowledged}) == total
        assert await _assigned_counts(routing_database) == (total, total)
