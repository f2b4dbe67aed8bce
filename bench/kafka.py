"""Issue #6 item 3 on the production shape: four ``yijian serve`` processes, PostgreSQL, Kafka.

Submit → assigned at a steady 20, then 200 complaints a second through intake's outbox, Kafka, and
routing's consumer. Baseline: a raw aiokafka produce-and-consume hop at the same rate, with
the producer settings yijian uses (bench.hops), on the same broker in the same run.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterable, Mapping
from functools import partial
from typing import Any, TypeVar

import httpx
import psutil

from bench import intake
from bench.assignment import ASSIGN_RATE, LIGHT_RATE, assignment_figures, assignments_at
from bench.context import Bench
from bench.figures import Figure
from bench.hops import kafka_hop
from bench.load import in_own_process, percentile
from bench.servers import cpu_seconds, server_pids
from bench.shape import production_shape
from deploy.local.stack import SERVICES
from yijian.contracts.events import TOPIC_INTAKE

T = TypeVar("T")


def _machine_busy_seconds() -> float:
    """CPU seconds all cores spent on anything but waiting, since boot."""
    times = psutil.cpu_times()
    return float(sum(times) - times.idle - getattr(times, "iowait", 0.0))


def _cpu_of(pids: Iterable[int]) -> dict[int, float]:
    seconds = {}
    for pid in pids:
        with contextlib.suppress(psutil.Error):  # a process that ended meanwhile
            seconds[pid] = cpu_seconds(pid)
    return seconds


async def costed(
    groups: Mapping[str, Callable[[], list[int]]], step: Callable[[], Awaitable[T]]
) -> tuple[T, dict[str, float]]:
    """``step``'s result and the CPU seconds each group of processes (and the whole machine,
    the load generator too) spent while it ran. A group's processes are listed again at the
    end, so one that started meanwhile (a new PostgreSQL connection) counts whole."""
    before = {name: _cpu_of(pids()) for name, pids in groups.items()}
    machine = _machine_busy_seconds()
    result = await step()
    spent = {}
    for name, pids in groups.items():
        after = _cpu_of(pids())
        spent[name] = sum(seconds - before[name].get(pid, 0.0) for pid, seconds in after.items())
    spent["machine"] = _machine_busy_seconds() - machine
    return result, spent


async def run(bench: Bench) -> tuple[list[Figure], dict[str, Any]]:
    processes, databases = await production_shape(bench, "shape")
    postgres, kafka = await bench.postgres(), await bench.kafka()  # the shape's, started
    ports = processes.ports
    try:
        for service in SERVICES:
            processes.start(service)
        async with httpx.AsyncClient() as client:
            for service in SERVICES:
                await processes.wait_ready(client, service)
        plan = partial(intake.steady_plan, bench, ports["intake"], collect_ids=True)
        settle = bench.scale.settle_timeout
        groups: dict[str, Callable[[], list[int]]] = {
            service: partial(list, [processes.processes[service].pid]) for service in SERVICES
        }
        groups["postgresql"] = partial(
            server_pids, postgres.directory / "data" / "postmaster.pid", with_children=True
        )
        groups["kafka"] = partial(server_pids, kafka.directory / "kafka.pid", with_children=False)
        light, light_measured = await assignments_at(plan, databases["routing"], LIGHT_RATE, settle)
        # Where two cores go at 200/s: each service's, PostgreSQL's and Kafka's CPU per
        # complaint, from the load's start until routing assigned the last one (escalation and
        # notify work alongside).
        (steady, measured), spent = await costed(
            groups, partial(assignments_at, plan, databases["routing"], ASSIGN_RATE, settle)
        )
    finally:
        processes.stop_all()
    hop_prefix = await bench.topics("hop")
    hop = await in_own_process(
        kafka_hop,
        kafka.bootstrap,
        hop_prefix + TOPIC_INTAKE,
        ASSIGN_RATE,
        bench.scale.duration,
        bench.scale.warmup,
    )
    details = {
        "steady": intake.summary(steady),
        "assigned": measured.details(),
        "light": intake.summary(light),
        "light_assigned": light_measured.details(),
        "cpu_ms_per_complaint": {
            name: seconds * 1000 / max(len(steady.accepted), 1) for name, seconds in spent.items()
        },
        "cpu_seconds": spent,
        "kafka_hop_p50_ms": percentile(hop, 50),
        "kafka_hop_p99_ms": percentile(hop, 99),
    }
    figures = [
        *assignment_figures("Kafka", measured, hop, "raw Kafka hop"),
        *assignment_figures("Kafka", light_measured, hop, "raw Kafka hop", LIGHT_RATE),
    ]
    return figures, details
