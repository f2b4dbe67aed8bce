"""Issue #6 item 2: how many complaints one intake worker takes, and how fast it answers.

Baseline: the bare endpoint of ``bench.baseline_app`` (intake's request model, no storage),
one uvicorn worker, measured first in the same run. Then ``yijian serve intake`` twice, in
the same way: on PostgreSQL with its outbox relaying to Kafka (production), and on SQLite
with the embedded event log (the embedded mode's storage). Each time: its throughput with 32
clients sending back to back, its CPU a complaint, and its latency at a steady 1,000 requests
a second. Intake is alone in its process both times; the all-in-one process, where routing,
escalation and notify share intake's thread, is measured by the embedded suite.
"""

from __future__ import annotations

import random
from typing import Any

import httpx

from bench.complaints import PHONE_STAMP, complaint_requests
from bench.context import Bench
from bench.figures import Figure, Target
from bench.load import LoadPlan, LoadResult, run_load
from bench.servers import RssWatch, ServerProcess, cpu_seconds, rss_mb
from deploy.local.stack import ServiceProcesses, free_port, production_env

STEADY_RATE = 1_000.0
CLIENTS = 32


def closed_plan(bench: Bench, port: int) -> LoadPlan:
    scale = bench.scale
    return LoadPlan(
        port=port,
        requests=complaint_requests(port),
        duration=scale.duration,
        warmup=scale.warmup,
        max_requests=int(scale.max_rate * (scale.duration + scale.warmup)),
        connections=CLIENTS,
        stamp=PHONE_STAMP,
        first_stamp=random.randrange(10**8),
    )


def steady_plan(bench: Bench, port: int, rate: float, *, collect_ids: bool = False) -> LoadPlan:
    scale = bench.scale
    return LoadPlan(
        port=port,
        requests=complaint_requests(port),
        duration=scale.duration,
        warmup=scale.warmup,
        max_requests=int(rate * (scale.duration + scale.warmup)) + 1,
        rate=rate,
        connections=256,
        # Past 5 s an answer misses every target here by far; waiting longer only adds time.
        timeout=5.0,
        collect_ids=collect_ids,
        stamp=PHONE_STAMP,
        first_stamp=random.randrange(10**8),
    )


def summary(result: LoadResult) -> dict[str, Any]:
    return {
        "sent": result.sent,
        "completed": result.completed,
        "errors": result.errors,
        "statuses": result.statuses,
        "first_error": result.first_error,
        "window_s": result.window,
        "per_second": result.throughput,
        "p50_ms": result.percentile_ms(50),
        "p99_ms": result.percentile_ms(99),
        "max_ms": result.percentile_ms(100),
    }


def cpu_per_request(cpu: float, result: LoadResult) -> float:
    """Milliseconds of the server's CPU per request it answered during a load."""
    answered = sum(result.statuses.values())
    return cpu * 1000 / answered if answered else 0.0


def checked(result: LoadResult, what: str) -> LoadResult:
    """A run where nothing succeeded measures nothing: say so rather than print it.

    Failed requests otherwise stay in the figures: a timeout counts in the latencies at the
    time given up (so an open loop the server cannot keep up with still has a p99: the
    timeout), and the details keep the count and the first error.
    """
    if result.completed == 0 and not result.latencies_ms:
        raise RuntimeError(f"{what}: nothing succeeded; first error: {result.first_error}")
    return result


async def measure_baseline(bench: Bench) -> dict[str, Any]:
    """The bare endpoint's figures, kept in ``bench.baselines`` for the other suites."""
    server = ServerProcess.baseline(bench.env(), bench.folder("logs"))
    server.start()
    try:
        await server.wait_ready()
        bench.baselines["rss_idle_mb"] = rss_mb(server.pid)
        cpu = cpu_seconds(server.pid)
        async with RssWatch(server.pid).running() as watch:
            closed = checked(await run_load(closed_plan(bench, server.port)), "baseline")
        bench.baselines["cpu_ms"] = cpu_per_request(cpu_seconds(server.pid) - cpu, closed)
        bench.baselines["rss_load_mb"] = watch.peak_mb or 0.0
        steady = checked(
            await run_load(steady_plan(bench, server.port, STEADY_RATE)), "baseline steady"
        )
    finally:
        server.stop()
    bench.baselines["throughput"] = closed.throughput
    bench.baselines["steady_p50_ms"] = steady.percentile_ms(50) or 0.0
    bench.baselines["steady_p99_ms"] = steady.percentile_ms(99) or 0.0
    return {"closed": summary(closed), "steady": summary(steady)}


async def measure_sqlite_intake(bench: Bench) -> dict[str, Any]:
    env = {**bench.env(), "YIJIAN_DATA_DIR": str(bench.folder("intake-sqlite-data"))}
    server = ServerProcess.service("intake", env, bench.folder("logs"))
    server.start()
    try:
        await server.wait_ready()
        return await measure_worker(bench, server.port, server.pid, "intake on SQLite")
    finally:
        server.stop()


async def measure_worker(bench: Bench, port: int, pid: int, what: str) -> dict[str, Any]:
    """A started intake worker's throughput and CPU a complaint, then its steady latency."""
    cpu = cpu_seconds(pid)
    closed = checked(await run_load(closed_plan(bench, port)), what)
    cpu_ms = cpu_per_request(cpu_seconds(pid) - cpu, closed)
    steady = checked(await run_load(steady_plan(bench, port, STEADY_RATE)), f"{what}, steady")
    return {"closed": summary(closed), "steady": summary(steady), "cpu_ms": cpu_ms}


async def measure_postgres_intake(bench: Bench) -> dict[str, Any]:
    postgres = await bench.postgres()
    kafka = await bench.kafka()
    prefix = await bench.topics("intake")
    data = bench.folder("intake-data")
    port = free_port()
    env = production_env(
        bootstrap=kafka.bootstrap,
        databases={"intake": await postgres.new_database("bench_intake")},
        data_dir=data,
        ports={"intake": port},
        topic_prefix=prefix,
    )
    processes = ServiceProcesses(env=env, logs=bench.folder("logs"), ports={"intake": port})
    processes.start("intake")
    try:
        async with httpx.AsyncClient() as client:
            await processes.wait_ready(client, "intake")
        pid = processes.processes["intake"].pid
        return await measure_worker(bench, port, pid, "intake on PostgreSQL")
    finally:
        processes.stop_all()


async def run(bench: Bench) -> tuple[list[Figure], dict[str, Any]]:
    details: dict[str, Any] = {"baseline": await measure_baseline(bench)}
    details["postgres"] = await measure_postgres_intake(bench)
    details["sqlite"] = await measure_sqlite_intake(bench)
    figures = [
        *worker_figures(
            bench,
            "PostgreSQL",
            details["postgres"],
            Target(at_least=1_500, ratio_at_least=0.40),
            "outbox to Kafka",
        ),
        *worker_figures(
            bench, "SQLite", details["sqlite"], Target(at_least=1_000), "embedded event log"
        ),
    ]
    return figures, details


def worker_figures(
    bench: Bench, store: str, measured: dict[str, Any], throughput: Target, events: str
) -> list[Figure]:
    base = bench.baselines
    closed, steady = measured["closed"], measured["steady"]
    return [
        Figure(
            f"intake {store} throughput",
            "req/s",
            closed["per_second"],
            base["throughput"],
            "bare FastAPI",
            throughput,
            note=f"yijian serve intake, {CLIENTS} clients back to back, one uvicorn worker, "
            f"{events}",
        ),
        Figure(
            f"intake {store} CPU per complaint",
            "ms",
            measured["cpu_ms"],
            base["cpu_ms"],
            "bare FastAPI",
            note="the intake process's user+system CPU during the throughput run, per answer",
        ),
        Figure(
            f"intake {store} p50 @ 1,000/s",
            "ms",
            steady["p50_ms"],
            base["steady_p50_ms"],
            "bare FastAPI",
            note="open loop: requests start on schedule whether or not the last answered",
        ),
        Figure(
            f"intake {store} p99 @ 1,000/s",
            "ms",
            steady["p99_ms"],
            base["steady_p99_ms"],
            "bare FastAPI",
            Target(at_most=25),
        ),
    ]
