"""What the relay puts in the log is what the service committed to its outbox, byte for byte,
and on Kafka each record lands in the partition a Java producer would pick for its key, one
complaint's events in the order they were emitted."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer
from sqlalchemy import select

from tests.integration.event_logs import Transport, World, closed, world_on
from yijian.bus.kafka import KafkaEventLog
from yijian.bus.kafka.dead_letters import read_to_end
from yijian.bus.kafka.records import EVENT_ID, EVENT_TYPE, partition_for
from yijian.bus.protocol import StoredEnvelope
from yijian.bus.relay import OutboxRelay
from yijian.bus.sqllog import SqlEventLog, event_log
from yijian.contracts.events import TOPIC_CASES

pytestmark = pytest.mark.integration

KEYS = [f"complaint-{n}" for n in range(8)]


@pytest.fixture(params=["embedded", "kafka"])
async def world(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[World]:
    transport: Transport = request.param
    bootstrap = request.getfixturevalue("kafka_bootstrap") if transport == "kafka" else None
    async with world_on(transport, tmp_path, bootstrap) as made:
        yield made


async def committed(world: World) -> list[tuple[str, str]]:
    """Three events per complaint, interleaved; (key, outbox text) in the order emitted."""
    for _ in range(3):
        async with world.database.transaction() as tx:
            for key in KEYS:
                await tx.emit(closed(key), key=key)
    outbox = world.database.outbox
    async with world.database.engine.connect() as connection:
        rows = await connection.execute(
            select(outbox.c.envelope).where(outbox.c.topic == TOPIC_CASES).order_by(outbox.c.id)
        )
        texts = list(rows.scalars())
    return [(key, text) for key, text in zip(KEYS * 3, texts, strict=True)]


async def held(world: World) -> list[tuple[int, bytes, bytes, dict[str, bytes]]]:
    """What the log holds on the cases topic: partition, key, value, headers; by partition
    and offset."""
    if isinstance(world.log, SqlEventLog):
        async with world.log.engine.connect() as connection:
            rows = await connection.execute(
                select(event_log)
                .where(event_log.c.topic == TOPIC_CASES)
                .order_by(event_log.c.partition, event_log.c.offset)
            )
            return [(row.partition, row.key.encode(), row.envelope.encode(), {}) for row in rows]
    assert isinstance(world.log, KafkaEventLog)
    partitions = await world.log.partitions([world.log.physical(TOPIC_CASES)])
    reader = AIOKafkaConsumer(bootstrap_servers=world.log.bootstrap, enable_auto_commit=False)
    await reader.start()
    try:
        records = await read_to_end(reader, partitions, timeout=30)
    finally:
        await reader.stop()
    records.sort(key=lambda found: (found[0].partition, found[1].offset))
    return [
        (partition.partition, record.key, record.value, dict(record.headers))
        for partition, record in records
    ]


async def test_the_log_holds_the_outbox_text_in_order_per_key(world: World) -> None:
    sent = await committed(world)
    assert await OutboxRelay(world.database, world.log).relay_once() == len(sent)
    assert await world.database.outbox_backlog() == 0
    records = await held(world)
    assert sorted(value for _, _, value, _ in records) == sorted(text.encode() for _, text in sent)
    for key in KEYS:
        mine = [(partition, value) for partition, k, value, _ in records if k == key.encode()]
        assert [value for _, value in mine] == [text.encode() for k, text in sent if k == key]
        assert len({partition for partition, _ in mine}) == 1


async def test_a_kafka_record_is_in_the_partition_java_would_pick(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    async with world_on("kafka", tmp_path, kafka_bootstrap) as world:
        await committed(world)
        await OutboxRelay(world.database, world.log).relay_once()
        records = await held(world)
        assert isinstance(world.log, KafkaEventLog)
        count = len(await world.log.partitions([world.log.physical(TOPIC_CASES)]))
        assert len({partition for partition, _, _, _ in records}) > 1
        assert len(records) == 3 * len(KEYS)
        for partition, key, value, headers in records:
            assert partition == partition_for(key, count)
            stored = StoredEnvelope.from_text(value.decode())
            assert stored.key.encode() == key
            assert headers == {EVENT_TYPE: b"complaint.closed", EVENT_ID: stored.id.encode()}
