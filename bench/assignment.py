"""Submit → assigned: from the citizen's 201 to routing's commit of the village assignment.

Routing stamps each case with ``clock_started_at`` in the transaction that assigns it (the
same clock as the load generator's: this machine's). Reading those stamps after the load, from
routing's own database, measures every complaint without polling the API during the run; a
complaint still unassigned when the wait ends counts as taking at least that long.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine

from bench.figures import Figure, Target
from bench.load import LoadPlan, LoadResult, percentile, run_load
from services.routing.store import cases

TARGET_P50_MS = 25.0
TARGET_P99_MS = 150.0


@dataclass
class Assignments:
    latencies_ms: list[float]
    missing: int

    def details(self) -> dict[str, Any]:
        return {
            "assigned": len(self.latencies_ms) - self.missing,
            "missing": self.missing,
            "p50_ms": percentile(self.latencies_ms, 50),
            "p99_ms": percentile(self.latencies_ms, 99),
            "max_ms": percentile(self.latencies_ms, 100),
        }


async def assignments(
    routing_url: str, accepted: Sequence[tuple[str, float]], timeout: float
) -> Assignments:
    """Wait (bounded) until routing assigned every accepted complaint; their latencies."""
    when_accepted = dict(accepted)
    assigned_at: dict[str, float] = {}
    engine = create_async_engine(routing_url)
    give_up = time.monotonic() + timeout
    try:
        while len(assigned_at) < len(when_accepted) and time.monotonic() < give_up:
            waiting = [c for c in when_accepted if c not in assigned_at]
            async with engine.connect() as connection:
                for start in range(0, len(waiting), 500):
                    rows = await connection.execute(
                        select(cases.c.complaint_id, cases.c.clock_started_at).where(
                            cases.c.complaint_id.in_(waiting[start : start + 500])
                        )
                    )
                    for row in rows:
                        assigned_at[row.complaint_id] = row.clock_started_at.timestamp()
            if len(assigned_at) < len(when_accepted):
                await asyncio.sleep(0.5)
    finally:
        await engine.dispose()
    now = time.time()
    latencies = [
        (assigned_at.get(complaint, now) - accepted_at) * 1000
        for complaint, accepted_at in when_accepted.items()
    ]
    return Assignments(latencies, len(when_accepted) - len(assigned_at))


# The rate, and a light one: at 200/s two cores running four services, PostgreSQL,
# Kafka and the load generator are saturated and the figure is a queue; at 20/s it is the
# path itself.
ASSIGN_RATE = 200.0
LIGHT_RATE = 20.0


async def assignments_at(
    bench_plan: Callable[[float], LoadPlan], routing_database: str, rate: float, settle: float
) -> tuple[LoadResult, Assignments]:
    """A steady load at ``rate``, then each accepted complaint's time to its assignment."""
    steady = await run_load(bench_plan(rate))
    if not steady.accepted:
        raise RuntimeError(f"nothing accepted at {rate:.0f}/s; first error: {steady.first_error}")
    return steady, await assignments(routing_database, steady.accepted, settle)


def assignment_figures(
    where: str,
    measured: Assignments,
    hop_ms: Sequence[float],
    hop_name: str,
    rate: float = ASSIGN_RATE,
) -> list[Figure]:
    note = f"{measured.missing} not assigned in time" if measured.missing else ""
    targeted = rate == ASSIGN_RATE
    at = "" if targeted else f" @ {rate:.0f}/s"
    return [
        Figure(
            f"submit→assigned p50{at} ({where})",
            "ms",
            percentile(measured.latencies_ms, 50),
            percentile(hop_ms, 50),
            hop_name,
            Target(at_most=TARGET_P50_MS) if targeted else Target(),
            note,
        ),
        Figure(
            f"submit→assigned p99{at} ({where})",
            "ms",
            percentile(measured.latencies_ms, 99),
            percentile(hop_ms, 99),
            hop_name,
            Target(at_most=TARGET_P99_MS) if targeted else Target(),
            note,
        ),
    ]
