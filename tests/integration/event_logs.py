"""One test world per transport, so the same behavioural checks run on the embedded log and on
Kafka: a service database with an ``applied`` table, and consumers that record what they apply.

On Kafka each world gets its own topics (the catalog's, under a fresh prefix), so tests sharing
the session's broker never see each other's records.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from sqlalchemy import Column, Integer, MetaData, String, Table, func, insert, select

from tests.conftest import MONDAY_MORNING
from yijian.bus.consumer import Consumer
from yijian.bus.kafka import KafkaEventLog
from yijian.bus.kafka.admin import TopicAdmin
from yijian.bus.outbox import ServiceDatabase, Transaction
from yijian.bus.sqllog import MIGRATIONS as EVENTLOG_MIGRATIONS
from yijian.bus.sqllog import SqlEventLog, event_log
from yijian.bus.sqllog import metadata as log_metadata
from yijian.bus.topics import load_catalog
from yijian.clock import FakeClock
from yijian.contracts import Envelope
from yijian.contracts.events import TOPIC_CASES, ComplaintClosed, Org
from yijian.db import create_engine, create_tables
from yijian.level import Level
from yijian.migrate import migrate

Transport = Literal["embedded", "kafka"]
ORG = Org(code="620922100201", name="新华村", level=Level.VILLAGE)
# How long a Kafka poll may wait for records: joining a group takes a moment.
KAFKA_PATIENCE = 15.0


def closed(key: str) -> ComplaintClosed:
    return ComplaintClosed(complaint_id=key, by=ORG, level=Level.VILLAGE)


@dataclass
class World:
    transport: Transport
    log: SqlEventLog | KafkaEventLog
    database: ServiceDatabase
    applied: Table
    clock: FakeClock
    consumers: list[Consumer] = field(default_factory=list)

    @property
    def patience(self) -> float:
        return KAFKA_PATIENCE if self.transport == "kafka" else 0.0

    def envelope(self, key: str) -> Envelope:
        return Envelope.wrap(closed(key), key=key, producer="test", occurred_at=self.clock.now())

    async def publish(self, envelopes: Sequence[Envelope], topic: str = TOPIC_CASES) -> None:
        await self.log.publish([(topic, envelope) for envelope in envelopes])

    async def applied_rows(self, consumer: str | None = None) -> list[tuple[str, str]]:
        query = select(self.applied.c.key, self.applied.c.event_id).order_by(self.applied.c.id)
        if consumer is not None:
            query = query.where(self.applied.c.consumer == consumer)
        async with self.database.engine.connect() as connection:
            return [(row.key, row.event_id) for row in await connection.execute(query)]

    def consumer(self, name: str, fail_on: set[str] | None = None, attempts: int = 3) -> Consumer:
        """A consumer group ``name``; it fails on events whose key or id is in ``fail_on``."""

        async def record(tx: Transaction, envelope: Envelope) -> None:
            if fail_on and {envelope.key, str(envelope.id)} & fail_on:
                raise ValueError(f"cannot handle {envelope.key}")
            await tx.connection.execute(
                insert(self.applied).values(
                    key=envelope.key, event_id=str(envelope.id), consumer=name
                )
            )

        consumer = Consumer(
            name=name,
            database=self.database,
            event_log=self.log,
            topics=[TOPIC_CASES],
            handlers={ComplaintClosed.TYPE: record},
            max_attempts=attempts,
        )
        self.consumers.append(consumer)
        return consumer

    async def once(self, consumer: Consumer) -> int:
        """One poll; on Kafka it waits (up to ``patience``) for the first records to come."""
        return await consumer.consume_once(timeout=self.patience)

    async def drain(self, consumer: Consumer, expected: int) -> int:
        """Poll until ``expected`` records were settled (or nothing more comes); the count."""
        settled = 0
        deadline = time.monotonic() + KAFKA_PATIENCE * 2
        while settled < expected and time.monotonic() < deadline:
            got = await self.once(consumer)
            if got == 0 and self.transport == "embedded":
                break
            settled += got
        return settled

    async def lag(self, group: str) -> int:
        return await self.log.lag(group, [TOPIC_CASES])

    async def stored(self) -> int:
        """How many records the log holds on the cases topic."""
        if isinstance(self.log, SqlEventLog):
            async with self.log.engine.connect() as connection:
                count = await connection.scalar(
                    select(func.count())
                    .select_from(event_log)
                    .where(event_log.c.topic == TOPIC_CASES)
                )
                return int(count or 0)
        partitions = await self.log.partitions([self.log.physical(TOPIC_CASES)])
        ends = await (await self.log.inspector()).end_offsets(partitions)
        return sum(int(offset) for offset in ends.values())

    async def close(self, consumer: Consumer) -> None:
        await consumer.close()
        self.consumers.remove(consumer)


def applied_table(metadata: MetaData) -> Table:
    return Table(
        "applied",
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("key", String(50)),
        Column("event_id", String(36)),
        Column("consumer", String(50)),
    )


@asynccontextmanager
async def kafka_topics(bootstrap: str) -> AsyncIterator[str]:
    """The catalog's topics under a fresh prefix, deleted afterwards; yields the prefix."""
    prefix = f"test-{uuid.uuid4().hex[:10]}."
    catalog = load_catalog(profile="local")
    async with TopicAdmin(bootstrap, prefix=prefix) as admin:
        await admin.apply(catalog)
    try:
        yield prefix
    finally:
        async with TopicAdmin(bootstrap, prefix=prefix) as admin:
            await admin.delete([topic.name for topic in catalog.topics])


def kafka_log(bootstrap: str, prefix: str) -> KafkaEventLog:
    return KafkaEventLog(
        bootstrap,
        client_id="test",
        topic_prefix=prefix,
        catalog=load_catalog(profile="local"),
        request_timeout_ms=10_000,
        delivery_timeout_ms=20_000,
        session_timeout_ms=6_000,
    )


@asynccontextmanager
async def world_on(
    transport: Transport, tmp_path: Path, bootstrap: str | None = None
) -> AsyncIterator[World]:
    clock = FakeClock(MONDAY_MORNING)
    metadata = MetaData()
    applied = applied_table(metadata)
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'service.db'}")
    database = ServiceDatabase(engine, metadata, producer="test", clock=clock)
    await create_tables(engine, metadata)
    try:
        if transport == "embedded":
            sql_log = SqlEventLog(
                create_engine(f"sqlite+aiosqlite:///{tmp_path / 'log.db'}"), clock
            )
            await migrate(sql_log.engine, log_metadata, EVENTLOG_MIGRATIONS)
            world = World(transport, sql_log, database, applied, clock)
            try:
                yield world
            finally:
                await _close(world)
        else:
            assert bootstrap is not None
            async with kafka_topics(bootstrap) as prefix:
                world = World(transport, kafka_log(bootstrap, prefix), database, applied, clock)
                try:
                    yield world
                finally:
                    await _close(world)
    finally:
        await engine.dispose()


async def _close(world: World) -> None:
    for consumer in list(world.consumers):
        await world.close(consumer)
    await world.log.close()
