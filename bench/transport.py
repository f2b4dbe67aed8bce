"""Issue #6 item 4: events a second through outbox → Kafka → consumer, acks=all.

yijian's side is its own code: an outbox in PostgreSQL filled beforehand (not timed), the
``OutboxRelay`` moving it to Kafka through ``KafkaEventLog`` (acks=all, idempotent), and a
``Consumer`` group applying each event in the consuming service's own PostgreSQL database (its
processed-event row, nothing else: the handler does no work). The clock runs from the relay's
start to the consumer's last commit.

Baseline, same broker, same run: a raw aiokafka producer with the same settings, sending the
same records in batches of the relay's size and waiting for each batch's acknowledgements, and
a raw consumer reading batches of the consumer's size and committing each.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from sqlalchemy import MetaData, insert

from bench.context import Bench
from bench.figures import Figure, Target
from bench.load import in_own_process
from yijian.bus.consumer import Consumer
from yijian.bus.kafka import KafkaEventLog
from yijian.bus.kafka.records import event_record
from yijian.bus.outbox import ServiceDatabase, Transaction, outbox_tables
from yijian.bus.relay import OutboxRelay
from yijian.clock import SystemClock
from yijian.contracts import Envelope
from yijian.contracts.events import TOPIC_INTAKE, ComplaintSubmitted, ReportedLocation
from yijian.db import create_engine, create_tables

RELAY_BATCH = 500  # OutboxRelay's default
CONSUMER_BATCH = 200  # Consumer's default
WARM_UP_EVENTS = 200


def submitted(n: int) -> Envelope:
    complaint_id = uuid.uuid4().hex
    now = datetime.now(UTC)
    payload = ComplaintSubmitted(
        complaint_id=complaint_id,
        tracking_no=f"GZ260302-{n % 1_000_000:06d}",
        category="道路交通",
        urgency="normal",
        channel="web",
        location=ReportedLocation(village_code="620922100001", grid_code=None, lat=None, lon=None),
        has_contact=True,
        submitted_at=now,
    )
    return Envelope.wrap(payload, key=complaint_id, producer="intake", occurred_at=now)


async def _service_database(url: str, producer: str) -> ServiceDatabase:
    metadata = MetaData()
    outbox_tables(metadata)
    engine = create_engine(url)
    await create_tables(engine, metadata)
    return ServiceDatabase(engine, metadata, producer=producer, clock=SystemClock())


async def _fill_outbox(database: ServiceDatabase, count: int) -> None:
    now = datetime.now(UTC)
    for start in range(0, count, 2_000):
        rows = [
            {"topic": TOPIC_INTAKE, "envelope": submitted(n).model_dump_json(), "created_at": now}
            for n in range(start, min(count, start + 2_000))
        ]
        async with database.engine.begin() as connection:
            await connection.execute(insert(database.outbox), rows)


async def _nothing(tx: Transaction, envelope: Envelope) -> None:
    return None


async def yijian_transport(
    bootstrap: str, prefix: str, producer_url: str, consumer_url: str, count: int, timeout: float
) -> dict[str, Any]:
    source = await _service_database(producer_url, "intake")
    sink = await _service_database(consumer_url, "routing")
    event_log = KafkaEventLog(bootstrap, client_id="bench-transport", topic_prefix=prefix)
    relay = OutboxRelay(source, event_log)
    consumer = Consumer(
        name="bench.transport",
        database=sink,
        event_log=event_log,
        topics=[TOPIC_INTAKE],
        handlers={ComplaintSubmitted.TYPE: _nothing},
    )
    try:
        # Producer connected and group joined before the clock starts, as in a running service.
        await _fill_outbox(source, WARM_UP_EVENTS)
        await relay.relay_once()
        await _consume(consumer, WARM_UP_EVENTS, time.monotonic() + 60)
        await _fill_outbox(source, count)
        started, cpu = time.perf_counter(), time.process_time()
        relaying = asyncio.create_task(relay.relay_once())
        applied = await _consume(consumer, count, time.monotonic() + timeout)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        relayed = await relaying if relaying.done() else None
        relaying.cancel()
    finally:
        await consumer.close()
        await event_log.close()
        await source.engine.dispose()
        await sink.engine.dispose()
    return {
        "events": applied,
        "seconds": elapsed,
        "cpu_seconds": cpu,
        "relayed": relayed,
        "complete": applied >= count,
    }


async def _consume(consumer: Consumer, count: int, give_up: float) -> int:
    applied = 0
    while applied < count and time.monotonic() < give_up:
        applied += await consumer.consume_once(timeout=0.5)
    return applied


async def raw_transport(bootstrap: str, topic: str, count: int, timeout: float) -> dict[str, Any]:
    records = [event_record(topic, submitted(n)) for n in range(count + WARM_UP_EVENTS)]
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=True,
        max_batch_size=256 * 1024,  # as yijian's producer (yijian/bus/kafka/eventlog.py)
    )
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"bench-raw-{uuid.uuid4().hex[:8]}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await producer.start()
    await consumer.start()

    async def produce(batch: list[Any]) -> None:
        for start in range(0, len(batch), RELAY_BATCH):
            futures = [
                await producer.send(r.topic, r.value, key=r.key, headers=r.headers)
                for r in batch[start : start + RELAY_BATCH]
            ]
            await asyncio.gather(*futures)

    async def consume(wanted: int, give_up: float) -> int:
        seen = 0
        while seen < wanted and time.monotonic() < give_up:
            batches = await consumer.getmany(timeout_ms=500, max_records=CONSUMER_BATCH)
            seen += sum(len(batch) for batch in batches.values())
            if batches:
                await consumer.commit()
        return seen

    try:
        await produce(records[:WARM_UP_EVENTS])
        await consume(WARM_UP_EVENTS, time.monotonic() + 60)
        started, cpu = time.perf_counter(), time.process_time()
        producing = asyncio.create_task(produce(records[WARM_UP_EVENTS:]))
        seen = await consume(count, time.monotonic() + timeout)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        await asyncio.wait_for(producing, 30)
    finally:
        await producer.stop()
        await consumer.stop()
    return {"events": seen, "seconds": elapsed, "cpu_seconds": cpu, "complete": seen >= count}


async def run(bench: Bench) -> tuple[list[Figure], dict[str, Any]]:
    postgres = await bench.postgres()
    kafka = await bench.kafka()
    count = bench.scale.transport_events
    timeout = bench.scale.settle_timeout * 3
    raw_prefix = await bench.topics("raw")
    raw = await in_own_process(
        raw_transport, kafka.bootstrap, raw_prefix + TOPIC_INTAKE, count, timeout
    )
    ours = await in_own_process(
        yijian_transport,
        kafka.bootstrap,
        await bench.topics("transport"),
        await postgres.new_database("bench_outbox"),
        await postgres.new_database("bench_consumer"),
        count,
        timeout,
    )
    for side in (raw, ours):
        side["per_second"] = side["events"] / side["seconds"] if side["seconds"] else 0.0
        side["cpu_ms_per_event"] = side["cpu_seconds"] * 1000 / max(side["events"], 1)
    throughput = Figure(
        "events/s outbox→Kafka→consumer",
        "ev/s",
        ours["per_second"],
        raw["per_second"],
        "raw aiokafka",
        Target(at_least=10_000, ratio_at_least=0.5),
        note=f"{count:,} events, acks=all"
        + ("" if ours["complete"] else f"; only {ours['events']:,} within {timeout:g}s"),
    )
    cpu = Figure(
        "CPU per event outbox→Kafka→consumer",
        "ms",
        ours["cpu_ms_per_event"],
        raw["cpu_ms_per_event"],
        "raw aiokafka",
        note="the relaying and consuming process's CPU (PostgreSQL's own is not counted)",
    )
    return [throughput, cpu], {"events": count, "yijian": ours, "raw": raw}
