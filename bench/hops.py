"""Baselines for submit → assigned: one raw durable hop on each transport, at the same rate.

A complaint reaches routing over at least one durable hop of its transport (outbox → log →
consumer), so the floor under its latency is one such hop with nothing else: a raw aiokafka
produce (acks=all, idempotent, the same batch size) and consume; or one SQLite commit (WAL,
synchronous=FULL, as yijian's) seen by a reader woken in the same process. Latency is from the
moment a record was due on the fixed schedule to the moment a consumer held it.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path

import aiosqlite
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer


async def kafka_hop(
    bootstrap: str, topic: str, rate: float, duration: float, warmup: float
) -> list[float]:
    """Milliseconds from due to consumed, for records due after ``warmup``."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"bench-hop-{uuid.uuid4().hex[:8]}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=True,
        max_batch_size=256 * 1024,  # as yijian's producer (yijian/bus/kafka/eventlog.py)
    )
    await consumer.start()
    await producer.start()
    try:
        # Join the group before the clock starts, as a running service has.
        for _ in range(60):
            await consumer.getmany(timeout_ms=500)
            if consumer.assignment():
                break
        total = int(rate * (warmup + duration))
        counted_from = time.time() + warmup
        latencies: list[float] = []

        async def consume() -> None:
            seen = 0
            give_up = time.monotonic() + warmup + duration + 30
            while seen < total and time.monotonic() < give_up:
                batches = await consumer.getmany(timeout_ms=100, max_records=200)
                now = time.time()
                for records in batches.values():
                    for record in records:
                        seen += 1
                        due = float(json.loads(record.value)["due"])
                        if due >= counted_from:
                            latencies.append((now - due) * 1000)
                if batches:
                    await consumer.commit()

        consuming = asyncio.create_task(consume())
        started = time.time()
        for n in range(total):
            due = started + n / rate
            await asyncio.sleep(max(0.0, due - time.time()))
            value = json.dumps({"due": due, "pad": "x" * 400}).encode()
            await producer.send(topic, value, key=uuid.uuid4().hex.encode())
        await producer.flush()
        await consuming
        return latencies
    finally:
        await producer.stop()
        await consumer.stop()


async def sqlite_hop(folder: Path, rate: float, duration: float, warmup: float) -> list[float]:
    """The same for one SQLite commit, read by a waiting reader in the same process."""
    path = folder / f"hop-{uuid.uuid4().hex[:8]}.db"
    writer = await aiosqlite.connect(path, isolation_level=None)
    reader = await aiosqlite.connect(path, isolation_level=None)
    try:
        # WAL is a property of the file: set once, by the writer.
        for connection, pragmas in (
            (writer, ("busy_timeout=30000", "journal_mode=WAL", "synchronous=FULL")),
            (reader, ("busy_timeout=30000", "synchronous=FULL")),
        ):
            for pragma in pragmas:
                await (await connection.execute(f"PRAGMA {pragma}")).close()
        await writer.execute("CREATE TABLE hop (id INTEGER PRIMARY KEY, due REAL, body TEXT)")
        appended = asyncio.Event()
        total = int(rate * (warmup + duration))
        counted_from = time.time() + warmup
        latencies: list[float] = []

        async def read() -> None:
            last, seen = 0, 0
            give_up = time.monotonic() + warmup + duration + 30
            while seen < total and time.monotonic() < give_up:
                appended.clear()
                async with reader.execute("SELECT id, due FROM hop WHERE id > ?", (last,)) as rows:
                    found = list(await rows.fetchall())
                now = time.time()
                for row_id, due in found:
                    last, seen = row_id, seen + 1
                    if due >= counted_from:
                        latencies.append((now - due) * 1000)
                if not found:
                    try:
                        await asyncio.wait_for(appended.wait(), 1.0)
                    except TimeoutError:
                        continue

        reading = asyncio.create_task(read())
        started = time.time()
        for n in range(total):
            due = started + n / rate
            await asyncio.sleep(max(0.0, due - time.time()))
            await writer.execute("BEGIN IMMEDIATE")
            await writer.execute("INSERT INTO hop (due, body) VALUES (?, ?)", (due, "x" * 400))
            await writer.execute("COMMIT")
            appended.set()
        await reading
        return latencies
    finally:
        await writer.close()
        await reader.close()
        path.unlink(missing_ok=True)
