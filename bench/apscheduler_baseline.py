"""The deadlines baseline: APScheduler 3 with its SQLAlchemyJobStore on the same PostgreSQL.

The general-purpose way to keep timers in a database: each deadline is a pickled date job,
fired by a BackgroundScheduler with a thread pool. It runs in a process of its own, through
the same four measurements as yijian's (bench.deadlines), each bounded in time: where it
cannot add every job within the bound, its rates are taken from what it did add.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psutil
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler

from bench.load import percentile

_lags_ms: list[float] = []
_lags_lock = threading.Lock()


class TolerantScheduler(BackgroundScheduler):  # type: ignore[misc]
    """APScheduler's scheduler, except that removing a job already gone is not fatal.

    Under this load its main loop now and then removes a fired date job twice; the
    JobLookupError that raises ends the loop's thread and every later job with it. Ignoring
    it keeps the baseline measuring APScheduler's speed rather than that race.
    """

    def remove_job(self, job_id: str, jobstore: str | None = None) -> None:
        with contextlib.suppress(JobLookupError):
            super().remove_job(job_id, jobstore)


def fired(due: float) -> None:
    """The job: note how late it ran (module-level, so the job store can name it)."""
    lag = (time.time() - due) * 1000
    with _lags_lock:
        _lags_ms.append(lag)


def _add(scheduler: BackgroundScheduler, times: list[datetime], bound: float) -> tuple[int, float]:
    """Add one date job per time until done or ``bound`` seconds; (added, seconds)."""
    started = time.perf_counter()
    added = 0
    for at in times:
        if time.perf_counter() - started > bound:
            break
        scheduler.add_job(fired, "date", run_date=at, args=[at.timestamp()], id=uuid.uuid4().hex)
        added += 1
    return added, time.perf_counter() - started


def _wait_for(count: int, bound: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < bound:
        with _lags_lock:
            if len(_lags_ms) >= count:
                break
        time.sleep(0.05)
    return time.monotonic() - started


async def apscheduler_run(
    url: str, pending: int, rate: int, duration: float, drain: int, bound: float
) -> dict[str, Any]:
    """Run in its own process (``bench.load.in_own_process``): the scheduler is threaded."""
    return await asyncio.to_thread(measure, url, pending, rate, duration, drain, bound)


def measure(
    url: str, pending: int, rate: int, duration: float, drain: int, bound: float
) -> dict[str, Any]:
    scheduler = TolerantScheduler(
        jobstores={"default": SQLAlchemyJobStore(url=url)},
        executors={"default": ThreadPoolExecutor(20)},
        job_defaults={"misfire_grace_time": None, "coalesce": False},
        timezone=UTC,
    )
    scheduler.start()
    result: dict[str, Any] = {}
    try:
        process = psutil.Process()
        rss_before = process.memory_info().rss
        far = datetime.now(UTC) + timedelta(days=30)
        times = [far + timedelta(milliseconds=n) for n in range(pending)]
        added, seconds = _add(scheduler, times, bound)
        result.update(added=added, add_per_second=added / seconds)
        result["bytes_per_pending"] = (process.memory_info().rss - rss_before) / max(added, 1)

        steady = int(rate * duration)
        lead = steady / result["add_per_second"] + 2  # added before the first comes due
        low = datetime.now(UTC) + timedelta(seconds=lead)
        scheduled, _ = _add(
            scheduler, [low + timedelta(seconds=n / rate) for n in range(steady)], lead
        )
        time.sleep(max(0.0, (low - datetime.now(UTC)).total_seconds() + duration))
        _wait_for(scheduled, bound)
        with _lags_lock:
            lags = list(_lags_ms)
            _lags_ms.clear()
        now = time.time()
        late = [
            (now - (low + timedelta(seconds=n / rate)).timestamp()) * 1000
            for n in range(len(lags), scheduled)
        ]
        result.update(steady=scheduled, lag_p99_ms=percentile(lags + late, 99))

        scheduler.pause()
        due = datetime.now(UTC) - timedelta(seconds=1)
        queued, _ = _add(scheduler, [due] * drain, bound)
        scheduler.resume()
        seconds = _wait_for(queued, bound)
        with _lags_lock:
            done = len(_lags_ms)
        rate_reached = done / max(seconds, 0.001)
        result.update(
            drain_queued=queued,
            drain_fired=done,
            drain_seconds=seconds if done >= drain else drain / max(rate_reached, 0.001),
        )
    finally:
        # Jobs still due when the measurement stops cannot be submitted to the pool being shut
        # down; APScheduler logs a traceback for each, which says nothing about its speed.
        logging.getLogger("apscheduler").setLevel(logging.CRITICAL)
        scheduler.shutdown(wait=False)
    return result
