"""What the suites of one benchmark run share: its scale, its folder, PostgreSQL and Kafka.

PostgreSQL and Kafka start once per run, when a suite first asks for them, and stop at the
end. Each suite takes fresh databases and its own Kafka topics (the catalog's, under a prefix
of its own), so no suite reads what another left behind.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from deploy.local.stack import LocalKafka, LocalPostgres
from yijian.bus.kafka.admin import TopicAdmin
from yijian.bus.topics import load_catalog

Mode = Literal["quick", "full"]


@dataclass(frozen=True)
class Scale:
    """How much each suite does; every load is bounded by time and by count."""

    duration: float  # seconds of each counted load
    warmup: float  # seconds sent before counting starts
    max_rate: float  # closed-loop request cap per second of duration (a count bound)
    settle_timeout: float  # longest wait for the system to catch up after a load
    transport_events: int
    deadlines: int
    huge_deadlines: int  # pending deadlines of the second stage (0: none)
    baseline_bound: float  # longest any one step of a slow baseline may take
    drain_bound: float  # longest wait for 100,000 due deadlines; past it the time is projected


# Quick: every figure once, in under three minutes on two cores (make bench-quick).
QUICK = Scale(
    duration=2.5,
    warmup=1.0,
    max_rate=20_000,
    settle_timeout=10.0,
    transport_events=5_000,
    deadlines=100_000,
    huge_deadlines=0,
    baseline_bound=3.0,
    drain_bound=10.0,
)
FULL = Scale(
    duration=20.0,
    warmup=3.0,
    max_rate=20_000,
    settle_timeout=60.0,
    transport_events=50_000,
    deadlines=1_000_000,
    huge_deadlines=10_000_000,
    baseline_bound=30.0,
    drain_bound=25.0,
)


@dataclass
class Bench:
    mode: Mode
    scale: Scale
    workdir: Path  # logs and data of this run
    results: Path  # bench/results
    # Baseline figures one suite measures and others compare against (same run).
    baselines: dict[str, float] = field(default_factory=dict)
    _postgres: LocalPostgres | None = None
    _kafka: LocalKafka | None = None
    _run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])

    def env(self) -> dict[str, str]:
        """The environment for processes of this run, without any inherited YIJIAN_ setting."""
        return {k: v for k, v in os.environ.items() if not k.startswith("YIJIAN_")}

    def folder(self, name: str) -> Path:
        path = self.workdir / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    async def postgres(self) -> LocalPostgres:
        if self._postgres is None:
            self._postgres = await asyncio.to_thread(LocalPostgres.start)
        return self._postgres

    async def kafka(self) -> LocalKafka:
        if self._kafka is None:
            kafka = LocalKafka.in_folder(self.folder("kafka"), heap="-Xms256m -Xmx512m")
            await asyncio.to_thread(kafka.start)
            self._kafka = kafka
        return self._kafka

    async def topics(self, suite: str) -> str:
        """Create the catalog's topics under a prefix for ``suite``; returns the prefix."""
        kafka = await self.kafka()
        prefix = f"bench{self._run_id}{suite}."
        async with TopicAdmin(
            kafka.bootstrap, client_id="bench-admin", request_timeout_ms=30_000, prefix=prefix
        ) as admin:
            await admin.apply(load_catalog(None, "local"))
        return prefix

    def close(self) -> None:
        kafka, self._kafka = self._kafka, None
        if kafka is not None:
            kafka.stop()
        postgres, self._postgres = self._postgres, None
        if postgres is not None:
            postgres.stop()
