"""A poll of the embedded log reads every partition of every topic in one statement, and still
hands each partition's records over in order, up to the limit for each."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from tests.conftest import MONDAY_MORNING
from tests.integration.conftest import NewDatabase
from tests.integration.event_logs import closed
from tests.integration.statements import Sent, statements_sent
from yijian.bus.protocol import Delivery
from yijian.bus.sqllog import MIGRATIONS, SqlEventLog, SqlSubscription, metadata, partition_for
from yijian.clock import FakeClock
from yijian.contracts import Envelope
from yijian.contracts.events import TOPIC_CASES, TOPIC_INTAKE
from yijian.db import create_engine
from yijian.migrate import migrate

pytestmark = pytest.mark.integration


def sent_for(key: str) -> Envelope:
    return Envelope.wrap(closed(key), key=key, producer="test", occurred_at=MONDAY_MORNING)


def partition_of(envelope: Envelope, partitions: int) -> int:
    return partition_for(envelope.key, partitions)


async def test_one_statement_reads_all_partitions_in_order_with_a_limit_each(
    tmp_path: Path,
) -> None:
    log = SqlEventLog(create_engine(f"sqlite+aiosqlite:///{tmp_path}/log.db"), FakeClock())
    await migrate(log.engine, metadata, MIGRATIONS)
    keys = [f"complaint-{n}" for n in range(12)]
    assert len({partition_for(key, log.partitions) for key in keys}) == log.partitions
    topics = (TOPIC_INTAKE, TOPIC_CASES)
    sent = [(topic, sent_for(key)) for _ in range(3) for key in keys for topic in topics]
    await log.publish(sent)
    subscription = log.subscribe("g", list(topics))
    await subscription.poll(0, 0)  # loads the group's positions
    try:
        with statements_sent(log.engine) as statements:
            first = await subscription.poll(5, 0)
    finally:
        await log.close()
    assert len([s for s, _ in statements if s.startswith("SELECT")]) == 1
    by_partition: dict[tuple[str, int], list[int]] = defaultdict(list)
    for delivery in first:
        by_partition[(delivery.topic, delivery.partition)].append(delivery.offset)
    assert len(by_partition) == 2 * log.partitions
    assert all(offsets == list(range(5)) for offsets in by_partition.values())
    # Within each partition, the records are those published there, in order.
    for (topic, partition), offsets in by_partition.items():
        there = [
            envelope.id
            for sent_topic, envelope in sent
            if sent_topic == topic and partition_of(envelope, log.partitions) == partition
        ]
        delivered = [d.envelope.id for d in first if (d.topic, d.partition) == (topic, partition)]
        assert delivered == there[: len(offsets)]


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
async def test_an_append_and_a_commit_are_one_statement_each_whatever_the_partitions(
    engine: str, tmp_path: Path, new_postgres_database: NewDatabase
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/log.db"
    if engine == "postgresql":
        url = await new_postgres_database()
    log = SqlEventLog(create_engine(url), FakeClock(), save_positions_every=3600)
    await migrate(log.engine, metadata, MIGRATIONS)
    keys = [f"complaint-{n}" for n in range(12)]
    topics = (TOPIC_INTAKE, TOPIC_CASES)

    def kinds(sent: list[Sent]) -> list[str]:
        return [statement.split()[0] for statement, _ in sent if not statement.startswith("BEGIN")]

    try:
        for _ in range(2):  # the second append continues the offsets of the first
            with statements_sent(log.engine) as sent:
                await log.publish([(topic, sent_for(key)) for key in keys for topic in topics])
            assert kinds(sent) == ["SELECT", "INSERT"]
        subscription = log.subscribe("g", list(topics))
        delivered = await subscription.poll(100, 0)
        assert len(delivered) == 2 * len(keys) * len(topics)
        with statements_sent(log.engine) as sent:
            await subscription.commit(delivered[:30])  # new positions for some partitions …
            await subscription.commit(delivered)  # … then moved on for those, new for the rest
            await subscription.save_positions()
        assert kinds(sent) == ["INSERT", "INSERT"]
        assert await subscription.lag() == 0
        # A new subscription of the group starts where the commits left it.
        assert await log.subscribe("g", list(topics)).poll(100, 0) == []
        offsets = sorted(d.offset for d in delivered if (d.topic, d.partition) == (TOPIC_CASES, 0))
        assert offsets == list(range(len(offsets)))
    finally:
        await log.close()


async def test_a_caught_up_subscription_waits_for_an_append_before_reading(
    tmp_path: Path,
) -> None:
    log = SqlEventLog(create_engine(f"sqlite+aiosqlite:///{tmp_path}/log.db"), FakeClock())
    await migrate(log.engine, metadata, MIGRATIONS)
    subscription = log.subscribe("g", [TOPIC_CASES])
    await log.publish([(TOPIC_CASES, sent_for("complaint-1"))])

    def reads() -> int:
        return len([s for s, _ in sent if "FROM event_log" in s and "max(" not in s])

    try:
        with statements_sent(log.engine) as sent:
            first = await subscription.poll(100, 1.0)
            await subscription.commit(first)
            assert len(first) == 1
            assert reads() == 1
            # Caught up: the next poll reads only once an append woke it. (Given the loop's
            # turns, a poll that reads first would have issued its read by now.)
            waiting = asyncio.create_task(subscription.poll(100, 60.0))
            for _ in range(10):
                await asyncio.sleep(0)
            assert reads() == 1
            await log.publish([(TOPIC_CASES, sent_for("complaint-2"))])
            second = await waiting
            assert [d.envelope.key for d in second] == ["complaint-2"]
            assert reads() == 2
            # Not committed: read again at once, whatever the timeout.
            again = await subscription.poll(100, 60.0)
            assert [d.offset for d in again] == [d.offset for d in second]
            assert reads() == 3
    finally:
        await log.close()


@pytest.fixture
async def slow_saving_log(tmp_path: Path) -> AsyncIterator[SqlEventLog]:
    """An embedded log whose groups write their positions only when told, after the first."""
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/log.db")
    log = SqlEventLog(engine, FakeClock(), save_positions_every=3600)
    await migrate(log.engine, metadata, MIGRATIONS)
    yield log
    await log.close()


async def delivered(log: SqlEventLog, count: int) -> tuple[SqlSubscription, list[Delivery]]:
    """``count`` complaints' events published to the cases topic, and group g's first poll."""
    await log.publish([(TOPIC_CASES, sent_for(f"complaint-{n}")) for n in range(count)])
    subscription = log.subscribe("g", [TOPIC_CASES])
    return subscription, await subscription.poll(100, 0)


async def test_positions_are_written_now_and_then_and_at_close(
    slow_saving_log: SqlEventLog,
) -> None:
    log = slow_saving_log
    crashed, applied = await delivered(log, 3)
    assert len(applied) == 3
    await crashed.commit(applied[:1])  # the first commit is written at once …
    await crashed.commit(applied)  # … the next waits for its time
    # A process that died here is re-delivered what it applied since the last write.
    again = await log.subscribe("g", [TOPIC_CASES]).poll(100, 0)
    assert [d.envelope.id for d in again] == [d.envelope.id for d in applied[1:]]
    # Closing writes them; so does asking for the lag.
    await crashed.close()
    assert await log.subscribe("g", [TOPIC_CASES]).poll(100, 0) == []
    await log.publish([(TOPIC_CASES, sent_for(f"complaint-{n}")) for n in (8, 9)])
    counting = log.subscribe("g", [TOPIC_CASES])
    first, second = await counting.poll(100, 0)
    await counting.commit([first])
    await counting.commit([second])
    assert await counting.lag() == 0


async def test_two_writes_of_the_same_positions_at_once_write_them_once(
    slow_saving_log: SqlEventLog,
) -> None:
    # The consumer's commit and the lag gauge can both write a group's positions at once;
    # the second finds nothing left to write once it has its connection.
    log = slow_saving_log
    subscription, (first, second) = await delivered(log, 2)
    await subscription.commit([first])
    await subscription.commit([second])  # unsaved: within the interval
    with statements_sent(log.engine) as sent:
        await asyncio.gather(subscription.save_positions(), subscription.save_positions())
    writes = [(s, p) for s, p in sent if "consumer_offsets" in s and not s.startswith("SELECT")]
    assert len(writes) == 1, writes
    async with log.engine.connect() as connection:
        rows = (await connection.execute(text("SELECT * FROM consumer_offsets"))).all()
    assert [(row.group, row.next_offset > 0) for row in rows] == [("g", True)]
    assert await log.subscribe("g", [TOPIC_CASES]).poll(100, 0) == []


async def test_a_dead_letter_moves_the_position_in_its_own_transaction(
    slow_saving_log: SqlEventLog,
) -> None:
    log = slow_saving_log
    subscription, (first, second) = await delivered(log, 2)
    await subscription.commit([])  # nothing committed yet: nothing to write
    await subscription.commit([first])
    await subscription.commit([])  # within the interval: nothing written
    await subscription.dead_letter(second, "broken", 5)
    # Not closed: only what was written stands, and it covers the parked record.
    assert await log.subscribe("g", [TOPIC_CASES]).poll(100, 0) == []
    assert [letter.envelope.id for letter in await log.dead_letters("g")] == [second.envelope.id]


async def test_a_dead_letter_that_fails_leaves_its_record_to_come_again(
    slow_saving_log: SqlEventLog,
) -> None:
    log = slow_saving_log
    subscription, [poison] = await delivered(log, 1)
    async with log.engine.begin() as connection:
        await connection.execute(
            text(
                "CREATE TRIGGER refuse BEFORE INSERT ON dead_letters "
                "BEGIN SELECT RAISE(ABORT, 'refused'); END"
            )
        )
    with pytest.raises(IntegrityError):
        await subscription.dead_letter(poison, "broken", 5)
    assert [d.envelope.id for d in await subscription.poll(100, 0)] == [poison.envelope.id]
