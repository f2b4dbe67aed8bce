"""The embedded event log keeps Kafka's promises: order per key, groups, at-least-once, DLQ."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, func, insert, select

from tests.conftest import MONDAY_MORNING
from yijian.bus.consumer import Consumer
from yijian.bus.outbox import ServiceDatabase, Transaction
from yijian.bus.relay import OutboxRelay
from yijian.bus.sqllog import SqlEventLog
from yijian.bus.sqllog import metadata as log_metadata
from yijian.clock import FakeClock
from yijian.contracts import Envelope
from yijian.contracts.events import TOPIC_CASES, ComplaintClosed, Org
from yijian.db import create_engine, create_tables
from yijian.level import Level

ORG = Org(code="620922100201", name="新华村", level=Level.VILLAGE)


def closed(key: str) -> ComplaintClosed:
    return ComplaintClosed(complaint_id=key, by=ORG, level=Level.VILLAGE)


@dataclass
class World:
    log: SqlEventLog
    database: ServiceDatabase
    applied: Table
    clock: FakeClock

    def envelope(self, key: str) -> Envelope:
        return Envelope.wrap(closed(key), key=key, producer="test", occurred_at=self.clock.now())

    async def applied_rows(self) -> list[tuple[str, str]]:
        async with self.database.engine.connect() as connection:
            rows = await connection.execute(
                select(self.applied.c.key, self.applied.c.event_id).order_by(self.applied.c.id)
            )
            return [(row.key, row.event_id) for row in rows]

    def consumer(self, name: str, fail_on: set[str] | None = None, attempts: int = 3) -> Consumer:
        async def record(tx: Transaction, envelope: Envelope) -> None:
            if fail_on and envelope.key in fail_on:
                raise ValueError(f"cannot handle {envelope.key}")
            await tx.connection.execute(
                insert(self.applied).values(key=envelope.key, event_id=str(envelope.id))
            )

        return Consumer(
            name=name,
            database=self.database,
            event_log=self.log,
            topics=[TOPIC_CASES],
            handlers={ComplaintClosed.TYPE: record},
            max_attempts=attempts,
        )


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    clock = FakeClock(MONDAY_MORNING)
    log = SqlEventLog(create_engine(f"sqlite+aiosqlite:///{tmp_path / 'log.db'}"), clock)
    await create_tables(log.engine, log_metadata)
    metadata = MetaData()
    applied = Table(
        "applied",
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("key", String(50)),
        Column("event_id", String(36)),
    )
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'service.db'}")
    database = ServiceDatabase(engine, metadata, producer="test", clock=clock)
    await create_tables(engine, metadata)
    yield World(log, database, applied, clock)
    await engine.dispose()
    await log.close()


async def test_each_keys_events_arrive_in_order(world: World) -> None:
    sent = [world.envelope(key) for _ in range(5) for key in ("a", "b", "c", "d")]
    await world.log.publish([(TOPIC_CASES, envelope) for envelope in sent])
    consumer = world.consumer("g")
    while await consumer.consume_once():
        pass
    applied = await world.applied_rows()
    assert len(applied) == len(sent)
    for key in "abcd":
        expected = [str(e.id) for e in sent if e.key == key]
        assert [event_id for k, event_id in applied if k == key] == expected


async def test_groups_have_their_own_offsets(world: World) -> None:
    await world.log.publish([(TOPIC_CASES, world.envelope("a"))])
    assert await world.consumer("one").consume_once() == 1
    assert await world.consumer("one").consume_once() == 0  # committed: a new instance resumes
    assert await world.consumer("two").consume_once() == 1
    assert await world.log.lag("one", [TOPIC_CASES]) == 0


async def test_a_redelivery_after_a_crash_is_applied_once(world: World) -> None:
    envelope = world.envelope("a")
    await world.log.publish([(TOPIC_CASES, envelope)])
    # The handler's transaction committed, then the process died before the offset commit:
    async with world.database.consuming("g", envelope) as tx:
        await tx.connection.execute(
            insert(world.applied).values(key="a", event_id=str(envelope.id))
        )
    assert await world.log.lag("g", [TOPIC_CASES]) == 1
    assert await world.consumer("g").consume_once() == 1  # settled as a duplicate
    assert len(await world.applied_rows()) == 1
    assert await world.log.lag("g", [TOPIC_CASES]) == 0


async def test_a_poison_event_is_dead_lettered_with_the_reason_and_can_be_replayed(
    world: World,
) -> None:
    await world.log.publish([(TOPIC_CASES, world.envelope("poison"))])
    failing = world.consumer("g", fail_on={"poison"}, attempts=3)
    for _ in range(3):
        await failing.consume_once()
    letters = await world.log.dead_letters("g")
    assert len(letters) == 1
    assert letters[0].attempts == 3
    assert "cannot handle poison" in letters[0].error
    assert await world.log.lag("g", [TOPIC_CASES]) == 0  # the partition moved on

    assert await world.log.replay_dead_letter(letters[0].id)
    assert not await world.log.replay_dead_letter(letters[0].id)  # only once
    fixed = world.consumer("g")
    assert await fixed.consume_once() == 1
    assert [key for key, _ in await world.applied_rows()] == ["poison"]


async def test_the_outbox_publishes_only_what_committed(world: World) -> None:
    with pytest.raises(RuntimeError):
        async with world.database.transaction() as tx:
            await tx.emit(closed("rolled-back"), key="rolled-back")
            raise RuntimeError("the handler failed after emitting")
    async with world.database.transaction() as tx:
        await tx.emit(closed("kept"), key="kept")
    relay = OutboxRelay(world.database, world.log)
    assert await relay.relay_once() == 1
    assert await relay.relay_once() == 0
    assert await world.database.outbox_backlog() == 0
    consumer = world.consumer("g")
    await consumer.consume_once()
    assert [key for key, _ in await world.applied_rows()] == ["kept"]
    async with world.log.engine.connect() as connection:
        from yijian.bus.sqllog import event_log

        assert await connection.scalar(select(func.count()).select_from(event_log)) == 1
