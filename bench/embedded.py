"""Issue #6 items 3 and 7 on the embedded shape: ``yijian run``, all four services over SQLite.

In one process, in this order: its memory idle; submit → assigned at a steady 20, then 200
complaints a second; then the throughput with 32 clients back to back, everything
downstream working through the flood in intake's thread (shown, without a target: item 2's
figure is intake's worker alone, on PostgreSQL and on SQLite, in bench.intake). Its memory
is watched throughout (the "under load" figure is the highest reading). Baselines: the bare
endpoint's figures from the intake suite, and one raw SQLite hop at 200/s (bench.hops).
"""

from __future__ import annotations

import asyncio
from functools import partial
from typing import Any

from bench import intake
from bench.assignment import ASSIGN_RATE, LIGHT_RATE, assignment_figures, assignments_at
from bench.context import Bench
from bench.figures import Figure, Target
from bench.hops import sqlite_hop
from bench.load import in_own_process, percentile, run_load
from bench.servers import RssWatch, ServerProcess, rss_mb

IDLE_SECONDS = 3.0


async def run(bench: Bench) -> tuple[list[Figure], dict[str, Any]]:
    if "throughput" not in bench.baselines:
        await intake.measure_baseline(bench)
    data = bench.folder("embedded-data")
    env = {**bench.env(), "YIJIAN_DATA_DIR": str(data)}
    server = ServerProcess.embedded(env, bench.folder("logs"))
    server.start()
    details: dict[str, Any] = {}
    try:
        await server.wait_ready()
        await asyncio.sleep(IDLE_SECONDS)  # let start-up work finish before calling it idle
        details["rss_idle_mb"] = rss_mb(server.pid)
        async with RssWatch(server.pid).running() as watch:
            plan = partial(intake.steady_plan, bench, server.port, collect_ids=True)
            routing = f"sqlite+aiosqlite:///{data / 'routing.db'}"
            settle = bench.scale.settle_timeout
            light, light_measured = await assignments_at(plan, routing, LIGHT_RATE, settle)
            steady, measured = await assignments_at(plan, routing, ASSIGN_RATE, settle)
            closed = intake.checked(
                await run_load(intake.closed_plan(bench, server.port)), "embedded, throughput"
            )
        details["rss_load_mb"] = watch.peak_mb
    finally:
        server.stop()
    hop = await in_own_process(
        sqlite_hop, bench.folder("hop"), ASSIGN_RATE, bench.scale.duration, bench.scale.warmup
    )
    details.update(
        steady=intake.summary(steady),
        assigned=measured.details(),
        light=intake.summary(light),
        light_assigned=light_measured.details(),
        closed=intake.summary(closed),
        sqlite_hop_p50_ms=percentile(hop, 50),
        sqlite_hop_p99_ms=percentile(hop, 99),
    )
    base = bench.baselines
    figures = [
        Figure(
            "all-in-one throughput (embedded)",
            "req/s",
            closed.throughput,
            base["throughput"],
            "bare FastAPI",
            note="yijian run: routing, escalation and notify work through the flood in "
            "intake's thread; intake alone on SQLite is the intake suite's figure",
        ),
        *assignment_figures("embedded", measured, hop, "raw SQLite hop"),
        *assignment_figures("embedded", light_measured, hop, "raw SQLite hop", LIGHT_RATE),
        Figure(
            "RSS idle (embedded)",
            "MB",
            details["rss_idle_mb"],
            base["rss_idle_mb"],
            "bare FastAPI",
        ),
        Figure(
            "RSS under load (embedded)",
            "MB",
            details["rss_load_mb"],
            base["rss_load_mb"],
            "bare FastAPI",
            Target(at_most=200),
        ),
    ]
    return figures, details
