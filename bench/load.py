"""The load generator: runs in a process of its own and sends requests to a loopback port.

Two shapes of load:

- closed loop (``rate=None``): ``connections`` clients each send their next request as soon as
  the last one answered; what the server completes per second is its throughput;
- open loop (``rate`` per second): requests start on a fixed schedule whatever the server is
  doing, each latency counted from the moment it was *due*, so a stalled server is charged
  for the queue it caused (no coordinated omission).

Every run is bounded twice, by ``duration`` and by ``max_requests``; a request gives up after
``timeout``. The first ``warmup`` seconds are sent but not counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import multiprocessing
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from bench.http1 import Connection

T = TypeVar("T")

# An open loop's connection that has waited this long is closed rather than used: uvicorn
# closes one idle for 5 s (its keep-alive timeout), and a request sent as it does so reads
# nothing back, an error that is the client's, not the server's.
STALE_AFTER = 4.0


@dataclass(frozen=True)
class LoadPlan:
    port: int
    requests: tuple[bytes, ...]  # prepared requests, sent in turn (bench.http1.post)
    duration: float
    max_requests: int
    warmup: float = 0.0
    rate: float | None = None
    connections: int = 32  # closed loop: clients; open loop: most connections at once
    timeout: float = 10.0
    collect_ids: bool = False  # keep the "id" of each 201 and when it arrived
    # Each occurrence in a request is replaced by a number unique to that request, of the
    # same width (so Content-Length holds): e.g. a phone number per complaint.
    stamp: bytes = b""
    first_stamp: int = 0


@dataclass
class LoadResult:
    sent: int = 0
    completed: int = 0  # answered with a 2xx inside the counted window
    errors: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    window: float = 0.0  # seconds counted
    latencies_ms: list[float] = field(default_factory=list)  # 2xx inside the counted window
    accepted: list[tuple[str, float]] = field(default_factory=list)  # (id, wall time of 201)
    first_error: str = ""

    @property
    def throughput(self) -> float:
        return self.completed / self.window if self.window > 0 else 0.0

    def percentile_ms(self, q: float) -> float | None:
        return percentile(self.latencies_ms, q)


def percentile(values: Sequence[float], q: float) -> float | None:
    """The nearest-rank percentile (q in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


class StampedRequests:
    """The plan's requests in turn, each stamped with its own number."""

    def __init__(self, plan: LoadPlan) -> None:
        self._plan = plan
        self._next = 0

    def take(self) -> bytes:
        plan, n = self._plan, self._next
        self._next += 1
        request = plan.requests[n % len(plan.requests)]
        if plan.stamp:
            width = len(plan.stamp)
            number = b"%0*d" % (width, (plan.first_stamp + n) % 10**width)
            request = request.replace(plan.stamp, number)
        return request


class _Recorder:
    def __init__(self, plan: LoadPlan, counted_from: float, counted_to: float) -> None:
        self.plan = plan
        self.counted_from = counted_from
        self.counted_to = counted_to
        self.result = LoadResult(window=counted_to - counted_from)
        self.statuses: Counter[int] = Counter()

    def record(self, due: float, done: float, status: int, body: bytes) -> None:
        self.statuses[status] += 1
        counted = self.counted_from <= due < self.counted_to
        if not 200 <= status < 300:
            self.result.errors += 1
            if not self.result.first_error:
                self.result.first_error = f"{status}: {body[:300]!r}"
            return
        if counted:
            self.result.completed += 1
            self.result.latencies_ms.append((done - due) * 1000)
        if self.plan.collect_ids and status == 201 and counted:
            self.result.accepted.append((json.loads(body)["id"], time.time()))

    def failed(self, error: BaseException, due: float, given_up: float) -> None:
        self.result.errors += 1
        if not self.result.first_error:
            self.result.first_error = f"{type(error).__name__}: {error}"
        if self.plan.rate is not None and self.counted_from <= due < self.counted_to:
            # An answer that never came is slower than any that did: it stays in the
            # percentiles at the time given up, rather than vanishing from them.
            self.result.latencies_ms.append((given_up - due) * 1000)


async def _closed(plan: LoadPlan, recorder: _Recorder, stop_at: float) -> None:
    sent = 0
    requests = StampedRequests(plan)

    async def client() -> None:
        nonlocal sent
        connection = await Connection.open(plan.port)
        try:
            while time.perf_counter() < stop_at and sent < plan.max_requests:
                request = requests.take()
                sent += 1
                started = time.perf_counter()
                try:
                    status, body = await asyncio.wait_for(
                        connection.exchange(request), plan.timeout
                    )
                except (OSError, TimeoutError, asyncio.IncompleteReadError) as error:
                    recorder.failed(error, started, time.perf_counter())
                    connection.close()
                    connection = await Connection.open(plan.port)
                    continue
                recorder.record(started, time.perf_counter(), status, body)
        finally:
            connection.close()

    await asyncio.gather(*(client() for _ in range(plan.connections)))
    recorder.result.sent = sent


async def _open(plan: LoadPlan, recorder: _Recorder, started: float, stop_at: float) -> None:
    assert plan.rate is not None
    idle: list[tuple[Connection, float]] = []  # with when each was last answered
    slots = asyncio.Semaphore(plan.connections)
    in_flight: set[asyncio.Task[None]] = set()

    async def one(request: bytes, due: float) -> None:
        async with slots:
            connection = None
            while idle and connection is None:
                connection, answered_at = idle.pop()
                if time.perf_counter() - answered_at > STALE_AFTER:
                    connection.close()
                    connection = None
            if connection is None:
                connection = await Connection.open(plan.port)
            try:
                remaining = plan.timeout - (time.perf_counter() - due)
                status, body = await asyncio.wait_for(
                    connection.exchange(request), max(remaining, 0.001)
                )
            except (OSError, TimeoutError, asyncio.IncompleteReadError) as error:
                recorder.failed(error, due, time.perf_counter())
                connection.close()
                return
            answered_at = time.perf_counter()
            recorder.record(due, answered_at, status, body)
            idle.append((connection, answered_at))

    launched = 0
    requests = StampedRequests(plan)
    while launched < plan.max_requests:
        now = time.perf_counter()
        if now >= stop_at:
            break
        due_count = min(int((now - started) * plan.rate) + 1, plan.max_requests)
        while launched < due_count:
            due = started + launched / plan.rate
            task = asyncio.create_task(one(requests.take(), due))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
            launched += 1
        next_due = started + launched / plan.rate
        await asyncio.sleep(max(0.0, min(next_due - time.perf_counter(), 0.002)))
    recorder.result.sent = launched
    if in_flight:
        await asyncio.wait(in_flight, timeout=plan.timeout + 1)
    for connection, _ in idle:
        connection.close()


async def drive(plan: LoadPlan) -> LoadResult:
    """Send the plan's load from this process and report what came back."""
    started = time.perf_counter()
    counted_from = started + plan.warmup
    stop_at = counted_from + plan.duration
    recorder = _Recorder(plan, counted_from, stop_at)
    if plan.rate is None:
        await _closed(plan, recorder, stop_at)
    else:
        await _open(plan, recorder, started, stop_at)
    recorder.result.statuses = dict(recorder.statuses)
    return recorder.result


def _run_here(work: Callable[..., Coroutine[Any, Any, T]], *args: Any) -> T:
    # uvloop: the generator's own overhead comes out of the servers' two cores.
    with contextlib.suppress(ImportError):
        import uvloop

        return uvloop.run(work(*args))
    return asyncio.run(work(*args))


async def in_own_process(work: Callable[..., Coroutine[Any, Any, T]], *args: Any) -> T:
    """Run ``work(*args)`` on an event loop of a fresh process (spawned: nothing shared)."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return await asyncio.get_running_loop().run_in_executor(pool, _run_here, work, *args)


async def run_load(plan: LoadPlan) -> LoadResult:
    """Send the plan's load from a process of its own."""
    return await in_own_process(drive, plan)
