"""Issue #6 item 5: deadlines at scale in PostgreSQL, under ``yijian serve escalation``.

Deadlines are rows written by escalation's own store function (``add_deadlines``, the one its
handlers call); the running escalation process fires them (``DeadlineFiring``, each in its own
transaction, its event relayed to Kafka). Measured, in this order, with N pending far in the
future (quick 100k, full 1M):

- insert rate, over the first 20,000 (the rest of the N are loaded in bulk);
- the escalation process's memory growth per pending deadline (it should keep none);
- firing lag (fired_at − fire_at) with 1,000 a second coming due;
- drain time of 100,000 due at once. Bounded: when they are not all fired within the bound,
  the time is projected from the rate reached, and the note says so.

Baseline: APScheduler's SQLAlchemyJobStore on the same PostgreSQL (bench.apscheduler_baseline),
as far as it gets in the same bounds.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import func, insert, literal, null, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.apscheduler_baseline import apscheduler_run
from bench.context import Bench
from bench.figures import Figure, Target
from bench.load import in_own_process, percentile
from bench.servers import rss_mb
from deploy.local.stack import ServiceProcesses, free_port, production_env
from services.escalation import store
from services.escalation.domain import ComplaintClock, DeadlineKind, PlannedDeadline
from yijian.contracts.events import Stage
from yijian.db import create_engine
from yijian.level import Level

STEADY_RATE = 1_000
TIMED_INSERTS = 20_000
DRAIN_COUNT = 100_000
PER_COMPLAINT = 2  # the accept and resolve deadlines of one clock
FAR = timedelta(days=30)


def _owner() -> ComplaintClock:
    return ComplaintClock(
        complaint_id=uuid.uuid4().hex,
        clock=1,
        level=Level.VILLAGE,
        category="道路交通",
        urgency="normal",
        started_at=datetime.now(UTC),
        correlation_id=uuid.uuid4(),
    )


def _planned(times: list[datetime]) -> list[PlannedDeadline]:
    stages = (Stage.ACCEPT, Stage.RESOLVE)
    return [
        PlannedDeadline(stage, DeadlineKind.DUE, at, at + timedelta(minutes=1))
        for stage, at in zip(stages, times, strict=False)
    ]


async def insert_deadlines(engine: AsyncEngine, fire_times: list[datetime]) -> float:
    """Write one DUE deadline per time, two per complaint, as escalation's handler does (one
    ``add_deadlines`` per complaint); returns the seconds it took."""
    started = time.perf_counter()
    for start in range(0, len(fire_times), 2_000):
        chunk = fire_times[start : start + 2_000]
        async with engine.begin() as connection:
            now = datetime.now(UTC)
            for first in range(0, len(chunk), PER_COMPLAINT):
                planned = _planned(chunk[first : first + PER_COMPLAINT])
                await store.add_deadlines(connection, _owner(), planned, now)
    return time.perf_counter() - started


async def load_deadlines(engine: AsyncEngine, fire_times: list[datetime]) -> None:
    """The same rows, loaded in bulk (many complaints a statement): for setting the scene
    fast, never for a figure."""
    for start in range(0, len(fire_times), 10_000):
        chunk = fire_times[start : start + 10_000]
        rows: list[dict[str, Any]] = []
        now = datetime.now(UTC)
        for first in range(0, len(chunk), PER_COMPLAINT):
            owner = _owner()
            rows += [
                store.deadline_row(owner, deadline, now)
                for deadline in _planned(chunk[first : first + PER_COMPLAINT])
            ]
        async with engine.begin() as connection:
            await connection.execute(insert(store.deadlines), rows)


GENERATED_CHUNK = 1_000_000
MILLISECOND = timedelta(milliseconds=1)


async def generate_deadlines(engine: AsyncEngine, count: int, first: datetime) -> None:
    """``count`` pending deadlines one millisecond apart from ``first``, generated inside
    PostgreSQL a million a statement, each row like those ``add_deadlines`` writes."""
    table = store.deadlines
    template = store.deadline_row(_owner(), _planned([first])[0], datetime.now(UTC))
    for low in range(0, count, GENERATED_CHUNK):
        high = min(count, low + GENERATED_CHUNK) - 1
        g = func.generate_series(low, high).table_valued("n").render_derived(name="g")
        fire_at = literal(first, type_=table.c.fire_at.type) + g.c.n * literal(MILLISECOND)
        made = {
            "complaint_id": func.concat("bench-", g.c.n),
            "fire_at": fire_at,
            "due_at": fire_at + literal(timedelta(minutes=1)),
        }
        values = [
            made.get(name, null() if value is None else literal(value, type_=table.c[name].type))
            for name, value in template.items()
        ]
        async with engine.begin() as connection:
            await connection.execute(
                insert(table).from_select(list(template), select(*values).select_from(g))
            )


async def lags_between(
    engine: AsyncEngine, low: datetime, high: datetime
) -> tuple[list[float], int]:
    """Lag in ms of every deadline due in [low, high), and how many have not fired yet.

    One still pending counts with the lag it has so far: at least that late.
    """
    now = datetime.now(UTC)
    async with engine.connect() as connection:
        rows = list(
            await connection.execute(
                select(store.deadlines.c.fire_at, store.deadlines.c.fired_at).where(
                    store.deadlines.c.fire_at >= low, store.deadlines.c.fire_at < high
                )
            )
        )
        lags = [((row.fired_at or now) - row.fire_at).total_seconds() * 1000 for row in rows]
        pending = sum(1 for row in rows if row.fired_at is None)
    return lags, pending


async def pending_due(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        count = await connection.scalar(
            select(func.count())
            .select_from(store.deadlines)
            .where(store.deadlines.c.state == "pending", store.deadlines.c.fire_at <= func.now())
        )
        return int(count or 0)


async def wait_fired(engine: AsyncEngine, bound: float) -> float:
    """Seconds until nothing due is pending, or ``bound`` if that came first."""
    started = time.monotonic()
    while time.monotonic() - started < bound:
        if await pending_due(engine) == 0:
            return time.monotonic() - started
        await asyncio.sleep(0.25)
    return bound


async def measure_yijian(bench: Bench, url: str) -> dict[str, Any]:
    kafka = await bench.kafka()
    port = free_port()
    env = production_env(
        bootstrap=kafka.bootstrap,
        databases={"escalation": url},
        data_dir=bench.folder("deadlines-data"),
        ports={"escalation": port},
        topic_prefix=await bench.topics("deadlines"),
    )
    processes = ServiceProcesses(env=env, logs=bench.folder("logs"), ports={"escalation": port})
    engine = create_engine(url)
    scale = bench.scale
    result: dict[str, Any] = {}
    processes.start("escalation")
    try:
        async with httpx.AsyncClient() as client:
            await processes.wait_ready(client, "escalation")
        pid = processes.processes["escalation"].pid
        await asyncio.sleep(5.5)  # one gauge round (every 5 s), so idle memory includes it
        rss_before = rss_mb(pid)
        far = datetime.now(UTC) + FAR
        times = [far + timedelta(milliseconds=n) for n in range(scale.deadlines)]
        # The rate is taken over the first TIMED_INSERTS; the rest are loaded in bulk.
        timed = min(TIMED_INSERTS, len(times))
        result["insert_per_second"] = timed / await insert_deadlines(engine, times[:timed])
        await load_deadlines(engine, times[timed:])
        await asyncio.sleep(5.5)  # the pending gauge counted them at least once
        result["bytes_per_pending"] = (rss_mb(pid) - rss_before) * 1024 * 1024 / scale.deadlines
        result.update(await _steady_lag(engine, scale.duration, scale.settle_timeout))
        if scale.huge_deadlines > scale.deadlines:
            # The rest up to the huge count, made by PostgreSQL itself: at the timed rate it
            # would take half an hour, and only the figures after it matter here.
            await generate_deadlines(engine, scale.huge_deadlines - scale.deadlines, far + FAR)
            await asyncio.sleep(5.5)  # the pending gauge counted them at least once
            growth = (rss_mb(pid) - rss_before) * 1024 * 1024 / scale.huge_deadlines
            huge = await _steady_lag(engine, scale.duration, scale.settle_timeout)
            result["huge"] = {"bytes_per_pending": growth, **huge}
        result.update(await _drain(engine, scale.drain_bound))
    finally:
        processes.stop_all()
        await engine.dispose()
    return result


async def _steady_lag(engine: AsyncEngine, duration: float, settle: float) -> dict[str, Any]:
    """Firing lag with STEADY_RATE deadlines a second coming due for ``duration`` seconds."""
    steady = int(STEADY_RATE * duration)
    low = datetime.now(UTC) + timedelta(seconds=3)
    await load_deadlines(engine, [low + timedelta(seconds=n / STEADY_RATE) for n in range(steady)])
    high = low + timedelta(seconds=duration)
    await asyncio.sleep(max(0.0, (high - datetime.now(UTC)).total_seconds()))
    await wait_fired(engine, settle)
    lags, unfired = await lags_between(engine, low, high)
    return {
        "steady": steady,
        "steady_fired": len(lags) - unfired,
        "lag_p50_ms": percentile(lags, 50),
        "lag_p99_ms": percentile(lags, 99),
    }


async def _drain(engine: AsyncEngine, bound: float) -> dict[str, Any]:
    due = datetime.now(UTC) - timedelta(seconds=1)
    await load_deadlines(engine, [due] * DRAIN_COUNT)
    started = datetime.now(UTC)
    seconds = await wait_fired(engine, bound)
    left = await pending_due(engine)
    fired = DRAIN_COUNT - left
    rate = fired / max(seconds, 0.001)
    projected = seconds if left == 0 else DRAIN_COUNT / max(rate, 0.001)
    return {
        "drain_started": started.isoformat(),
        "drain_fired": fired,
        "drain_rate": rate,
        "drain_seconds": projected,
        "drain_projected": left > 0,
    }


async def run(bench: Bench) -> tuple[list[Figure], dict[str, Any]]:
    postgres = await bench.postgres()
    ours = await measure_yijian(bench, await postgres.new_database("bench_deadlines"))
    theirs = await in_own_process(
        apscheduler_run,
        (await postgres.new_database("bench_apscheduler")).replace("+asyncpg", "+psycopg"),
        bench.scale.deadlines,
        STEADY_RATE,
        bench.scale.duration,
        DRAIN_COUNT,
        bench.scale.baseline_bound,
    )
    n = f"{bench.scale.deadlines:,}"
    figures = [
        Figure(
            f"deadline inserts ({n} pending)",
            "rows/s",
            ours["insert_per_second"],
            theirs["add_per_second"],
            "APScheduler",
            note=f"APScheduler added {theirs['added']:,} in its bound",
        ),
        Figure(
            "escalation memory per pending deadline",
            "B",
            ours["bytes_per_pending"],
            theirs["bytes_per_pending"],
            "APScheduler",
            Target(at_most=64),
        ),
        Figure(
            f"deadline firing lag p99 @ 1,000/s due ({n} pending)",
            "ms",
            ours["lag_p99_ms"],
            theirs["lag_p99_ms"],
            "APScheduler",
            Target(at_most=1_000),
            note=f"{ours['steady_fired']:,} of {ours['steady']:,} fired in the bound",
        ),
        *_huge_figures(ours.get("huge"), bench.scale.huge_deadlines),
        Figure(
            "drain 100,000 due at once" + (" (projected)" if ours["drain_projected"] else ""),
            "s",
            ours["drain_seconds"],
            theirs["drain_seconds"],
            "APScheduler",
            Target(at_most=20),
            note="projected from the rate reached" if ours["drain_projected"] else "",
        ),
    ]
    return figures, {"yijian": ours, "apscheduler": theirs}


def _huge_figures(huge: dict[str, Any] | None, count: int) -> list[Figure]:
    """The full run's figures at 10,000,000 pending; APScheduler never gets that far."""
    if huge is None:
        return []
    n = f"{count:,}"
    return [
        Figure(
            f"escalation memory per pending deadline (0 → {n})",
            "B",
            huge["bytes_per_pending"],
            None,
            "—",
            Target(at_most=64),
        ),
        Figure(
            f"deadline firing lag p99 @ 1,000/s due ({n} pending)",
            "ms",
            huge["lag_p99_ms"],
            None,
            "—",
            Target(at_most=2_000),
            note=f"{huge['steady_fired']:,} of {huge['steady']:,} fired in the bound",
        ),
    ]
