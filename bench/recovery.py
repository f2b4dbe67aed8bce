"""Issue #6 item 6: SIGKILL each service under load; how long until it processes again, and
how many acknowledged complaints were lost.

The production shape (four ``yijian serve`` processes, PostgreSQL, Kafka) takes a steady
trickle of complaints while each service in turn is killed with SIGKILL and started again at
once. "Processes again" is the first sign of new work after the kill: a 201 from intake, a
new case in routing's database, new deadlines in escalation's, new deliveries in notify's.
Baseline: the same service's cold start (process start to ``/readyz``) in the same run.
Lost: acknowledged complaints routing never assigned once the load has stopped and settled.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy import Table, func, select
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bench.context import Bench
from bench.figures import Figure, Target
from bench.shape import production_shape
from deploy.local.stack import SERVICES
from services.escalation.store import deadlines
from services.notify.store import deliveries
from services.routing.store import cases

RATE = 20.0  # complaints a second: enough that every service has work when it is killed
RECOVERY_TARGET_S = 5.0
WORK_OF: dict[str, Table] = {"routing": cases, "escalation": deadlines, "notify": deliveries}
VILLAGE = "620922100001"


@dataclass
class Citizens:
    """A steady trickle of complaints; one that failed is sent again with its own key."""

    intake: str
    acknowledged: list[str] = field(default_factory=list)
    last_ack: float = 0.0  # when the latest 201 came …
    last_ack_sent: float = 0.0  # … and when its request was sent
    _pending: list[str] = field(default_factory=list)

    async def run(self, client: httpx.AsyncClient, stop: asyncio.Event) -> None:
        while not stop.is_set():
            key = self._pending.pop(0) if self._pending else uuid.uuid4().hex
            body = {"description": f"路灯坏了 {key[:6]}", "location": {"village_code": VILLAGE}}
            sent = time.monotonic()
            try:
                answer = await client.post(
                    f"{self.intake}/api/v1/complaints",
                    content=json.dumps(body, ensure_ascii=False).encode(),
                    headers={"Idempotency-Key": key, "Content-Type": "application/json"},
                    timeout=5,
                )
                if answer.status_code == 201:
                    self.acknowledged.append(str(answer.json()["id"]))
                    self.last_ack, self.last_ack_sent = time.monotonic(), sent
                else:
                    self._pending.append(key)
            except httpx.TransportError:
                self._pending.append(key)
            await asyncio.sleep(1 / RATE)


async def count(engine: AsyncEngine, table: Table) -> int:
    async with engine.connect() as connection:
        return int(await connection.scalar(select(func.count()).select_from(table)) or 0)


async def time_to_work_again(
    service: str, citizens: Citizens, engines: dict[str, AsyncEngine], killed_at: float
) -> float | None:
    """Seconds from the kill to the first new work the service did; None if none in 60 s."""
    before = None if service == "intake" else await count(engines[service], WORK_OF[service])
    while time.monotonic() - killed_at < 60:
        if service == "intake":
            # A request sent before the kill may still have been answered: not a sign.
            if citizens.last_ack_sent > killed_at:
                return citizens.last_ack - killed_at
        elif await count(engines[service], WORK_OF[service]) > (before or 0):
            return time.monotonic() - killed_at
        await asyncio.sleep(0.05)
    return None


async def unassigned(engine: AsyncEngine, acknowledged: list[str], timeout: float) -> int:
    """Wait (bounded) for routing to assign every acknowledged complaint; how many it did not."""
    give_up = time.monotonic() + timeout
    while True:
        assigned = 0
        async with engine.connect() as connection:
            for start in range(0, len(acknowledged), 500):
                assigned += int(
                    await connection.scalar(
                        select(func.count())
                        .select_from(cases)
                        .where(cases.c.complaint_id.in_(acknowledged[start : start + 500]))
                    )
                    or 0
                )
        if assigned == len(acknowledged) or time.monotonic() > give_up:
            return len(acknowledged) - assigned
        await asyncio.sleep(0.5)


async def run(bench: Bench) -> tuple[list[Figure], dict[str, Any]]:
    # Static group members: a restarted consumer takes its partitions straight back.
    processes, databases = await production_shape(
        bench, "recovery", YIJIAN_KAFKA_INSTANCE_ID="replica-0"
    )
    engines = {s: create_async_engine(databases[s]) for s in WORK_OF}
    cold: dict[str, float] = {}
    recovered: dict[str, float | None] = {}
    citizens = Citizens(processes.url("intake"))
    stop = asyncio.Event()
    try:
        async with httpx.AsyncClient() as client:
            for service in SERVICES:
                started = time.monotonic()
                processes.start(service)
                await processes.wait_ready(client, service)
                cold[service] = time.monotonic() - started
            load = asyncio.create_task(citizens.run(client, stop))
            for service in SERVICES:
                await asyncio.sleep(bench.scale.warmup + 1)  # the service is busy when killed
                processes.kill(service)
                killed_at = time.monotonic()
                processes.start(service)
                recovered[service] = await time_to_work_again(service, citizens, engines, killed_at)
            await asyncio.sleep(bench.scale.warmup)
            stop.set()
            await load
        lost = await unassigned(
            engines["routing"], citizens.acknowledged, bench.scale.settle_timeout + 30
        )
    finally:
        stop.set()
        processes.stop_all()
        for engine in engines.values():
            await engine.dispose()
    figures = [
        Figure(
            f"recovery after SIGKILL: {service}",
            "s",
            recovered[service],
            cold[service],
            "cold start to ready",
            Target(at_most=RECOVERY_TARGET_S),
            "first new work after the kill, under a steady 20 complaints/s",
        )
        for service in SERVICES
    ]
    figures.append(
        Figure(
            "acknowledged complaints lost (4 SIGKILLs)",
            "",
            float(lost),
            None,
            "—",
            Target(at_most=0),
            f"of {len(citizens.acknowledged)} acknowledged",
        )
    )
    details = {
        "acknowledged": len(citizens.acknowledged),
        "lost": lost,
        "recovery_s": recovered,
        "cold_start_s": cold,
    }
    return figures, details
