"""``make soak``: the production shape under steady load and a stream of mixed faults for a
bounded time, then the checker's table for everything acknowledged.

    python -m tests.faults.soak [--minutes 4] [--seed N] [--settle-minutes 5]

Starts its own PostgreSQL and Kafka (deploy/local scripts, in a temporary folder) and the four
services; every few seconds one fault, chosen at random (the seed is printed, to run the same
sequence again): SIGKILL a service, stop Kafka, stop PostgreSQL, freeze a service, add a
second routing replica and kill the first, replay a service's consumer group from the start,
let the villages' deadlines lapse, step escalation's clock an hour forward and a minute back,
or have staff accept complaints. When
the time is up the faults stop, the load stops, the system is given ``--settle-minutes`` to
catch up and the checker decides: exit 0 when nothing was lost and nothing happened twice.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import httpx

from deploy.local.stack import LocalKafka, LocalPostgres
from tests.faults.checker import Figures, settled
from tests.faults.citizens import VILLAGE, Citizens
from tests.faults.history import Installation
from tests.faults.outages import start_postgres, stop_postgres
from tests.faults.probes import in_thread, sign_in, until
from tests.faults.production import FaultyProduction, production_on
from tests.integration.production import SERVICES

Fault = Callable[["Soak"], Awaitable[str]]


class Soak:
    def __init__(
        self,
        production: FaultyProduction,
        kafka: LocalKafka,
        postgres: LocalPostgres,
        chance: random.Random,
    ) -> None:
        self.production = production
        self.kafka = kafka
        self.postgres = postgres
        self.chance = chance
        self.citizens = Citizens(lambda: production.url("intake"), workers=2, pause=0.25)
        self.client = httpx.AsyncClient(timeout=30)
        self.done: Counter[str] = Counter()

    async def more_filed(self, number: int, timeout: float = 120.0) -> None:
        """Let the load go on until ``number`` more complaints were acknowledged."""
        reached = len(self.citizens.acknowledged) + number
        await until(lambda: len(self.citizens.acknowledged) >= reached, "more filed", timeout)

    async def more_refused(self, number: int) -> None:
        reached = sum(self.citizens.refused.values()) + number
        await until(lambda: sum(self.citizens.refused.values()) >= reached, "refusals", 60)

    async def ready(self, *names: str) -> None:
        for name in names or SERVICES:
            await self.production.wait_ready(self.client, name)


async def kill(soak: Soak) -> str:
    service = soak.chance.choice(SERVICES)
    soak.production.kill(service)
    if service == "intake":
        await soak.more_refused(4)
    else:
        await soak.more_filed(10)
    soak.production.start(service)
    await soak.ready(service)
    return f"SIGKILL {service}"


async def stop_kafka(soak: Soak) -> str:
    await in_thread(soak.kafka.stop)
    try:
        await soak.more_filed(20)
    finally:
        await in_thread(soak.kafka.start)
    await soak.ready()
    return "Kafka stopped"


async def stop_database(soak: Soak) -> str:
    await in_thread(lambda: stop_postgres(soak.postgres))
    try:
        await soak.more_refused(6)  # intake answers 503 meanwhile; the citizens retry
    finally:
        await in_thread(lambda: start_postgres(soak.postgres))
    await soak.ready()
    return "PostgreSQL stopped"


async def freeze(soak: Soak) -> str:
    service = soak.chance.choice([s for s in SERVICES if s != "intake"])
    soak.production.freeze(service)
    try:
        await soak.more_filed(15)
    finally:
        soak.production.thaw(service)
    return f"SIGSTOP {service}"


async def second_routing(soak: Soak) -> str:
    soak.production.start("routing", replica="routing-2")
    await soak.ready("routing-2")
    await soak.more_filed(10)
    soak.production.kill("routing")
    await soak.more_filed(10)
    soak.production.start("routing")
    await soak.ready("routing")
    soak.production.stop("routing-2")
    return "two routing replicas, the first killed"


async def replay(soak: Soak) -> str:
    service = soak.chance.choice(SERVICES)
    installation = Installation(
        bootstrap=soak.kafka.bootstrap,
        prefix=soak.production.env["YIJIAN_KAFKA_TOPIC_PREFIX"],
        databases=soak.production.service_databases,
    )
    soak.production.stop(service)
    try:
        await installation.rewind(service)
    finally:
        soak.production.start(service)
    await soak.ready(service)
    return f"{service}'s group replayed from the start"


async def lapse(soak: Soak) -> str:
    soak.production.advance(timedelta(hours=2, minutes=1))
    await soak.more_filed(10)
    return "village deadlines lapse (clock +2h01m)"


async def clock_step(soak: Soak) -> str:
    soak.production.skew_escalation(timedelta(hours=1))
    await soak.more_filed(5)
    soak.production.skew_escalation(-timedelta(minutes=1))
    await soak.more_filed(5)
    soak.production.align_clocks()
    return "escalation clock +1h, then -1m"


async def accept(soak: Soak) -> str:
    routing = soak.production.url("routing")
    staff = await sign_in(soak.client, routing, VILLAGE)
    recent = soak.citizens.acknowledged[-40:]
    outcomes: Counter[int] = Counter()
    for complaint_id in soak.chance.sample(recent, min(10, len(recent))):
        answer = await soak.client.post(
            f"{routing}/api/v1/complaints/{complaint_id}/accept", headers=staff
        )
        outcomes[answer.status_code] += 1
    return f"staff accept {dict(outcomes)}"


FAULTS: list[Fault] = [
    kill,
    kill,
    stop_kafka,
    stop_database,
    freeze,
    second_routing,
    replay,
    lapse,
    lapse,
    clock_step,
    accept,
]


async def run(soak: Soak, minutes: float, settle_minutes: float) -> Figures:
    started = time.monotonic()
    soak.citizens.start()
    try:
        while time.monotonic() - started < minutes * 60:
            fault = soak.chance.choice(FAULTS)
            what = await fault(soak)
            soak.done[what.split(" {")[0]] += 1
            elapsed = time.monotonic() - started
            print(f"{elapsed:7.1f}s  {what}  ({len(soak.citizens.acknowledged)} acknowledged)")
            await soak.more_filed(10)
    finally:
        await soak.citizens.stop()
        await soak.client.aclose()
    print(f"faults over after {time.monotonic() - started:.0f}s; letting the system settle")
    databases = soak.production.service_databases

    def finished(figures: Figures) -> bool:
        return figures.lost == 0

    return await settled(
        databases, soak.citizens.acknowledged, timeout=settle_minutes * 60, ready=finished
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.faults.soak", description=__doc__)
    parser.add_argument("--minutes", type=float, default=4.0, help="how long faults go on")
    parser.add_argument("--settle-minutes", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=None)
    options = parser.parse_args(argv)
    seed = options.seed if options.seed is not None else random.randrange(1 << 32)
    print(f"soak: {options.minutes:g} minutes of faults, seed {seed}")
    with tempfile.TemporaryDirectory(prefix="yijian-soak-") as scratch:
        folder = Path(scratch)
        postgres = LocalPostgres.start()
        kafka = LocalKafka.in_folder(folder / "kafka")
        try:
            kafka.start()
            with production_on(folder, bootstrap=kafka.bootstrap, postgres=postgres) as system:
                print(f"soak: four services up; logs in {folder} while it runs")
                soak = Soak(system, kafka, postgres, random.Random(seed))
                figures = asyncio.run(run(soak, options.minutes, options.settle_minutes))
        finally:
            kafka.stop()
            postgres.stop()
    print()
    print(figures.table(f"soak: {options.minutes:g} minutes, seed {seed}"))
    print("  faults: " + ", ".join(f"{what} ×{n}" for what, n in sorted(soak.done.items())))
    print("  failed attempts (retried): " + str(dict(soak.citizens.refused)))
    return 0 if figures.sound else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
