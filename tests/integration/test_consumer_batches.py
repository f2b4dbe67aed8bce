"""A consumer applies what one poll brought in one transaction, and keeps every promise of the
one-transaction-per-event path: each event applied once, in order per key, a failing event
singled out and retried or dead-lettered exactly as before, an outage waited out whole, and the
events handlers emit committed with the batch. On the embedded log; the same consumer runs on
Kafka in test_event_log.py.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import event, insert

from tests.integration.event_logs import World, closed, world_on
from yijian.bus.consumer import Consumer
from yijian.bus.outbox import Transaction
from yijian.bus.sqllog import SqlEventLog, partition_for
from yijian.contracts import Envelope
from yijian.contracts.events import TOPIC_CASES, ComplaintClosed

pytestmark = pytest.mark.integration


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    async with world_on("embedded", tmp_path) as world:
        yield world


@contextmanager
def counting_commits(world: World) -> Iterator[list[int]]:
    """Counts the service database's commits while the block runs (in the list's one item)."""
    commits = [0]

    def committed(*_: Any) -> None:
        commits[0] += 1

    engine = world.database.engine.sync_engine
    event.listen(engine, "commit", committed)
    try:
        yield commits
    finally:
        event.remove(engine, "commit", committed)


def consumed(consumer: str, outcome: str) -> float:
    value = REGISTRY.get_sample_value(
        "yijian_events_consumed_total", {"consumer": consumer, "outcome": outcome}
    )
    return value or 0.0


def keys_apart(world: World, count: int) -> list[str]:
    """``count`` keys that land on different partitions of the embedded log."""
    assert isinstance(world.log, SqlEventLog)
    chosen: dict[int, str] = {}
    for n in range(100):
        chosen.setdefault(partition_for(f"complaint-{n}", world.log.partitions), f"complaint-{n}")
    assert len(chosen) >= count
    return list(chosen.values())[:count]


async def test_one_poll_is_applied_in_one_transaction_in_order_per_key(world: World) -> None:
    sent = [world.envelope(key) for _ in range(10) for key in ("a", "b", "c", "d")]
    await world.publish(sent)
    consumer = world.consumer("batch-one-commit")
    with counting_commits(world) as commits:
        assert await world.once(consumer) == len(sent)
    assert commits[0] == 1
    applied = await world.applied_rows()
    assert len(applied) == len(sent)
    for key in "abcd":
        expected = [str(e.id) for e in sent if e.key == key]
        assert [event_id for k, event_id in applied if k == key] == expected
    assert consumed("batch-one-commit", "applied") == len(sent)


async def test_duplicates_in_the_batch_and_of_earlier_events_are_applied_once(
    world: World,
) -> None:
    name = "batch-duplicates"
    earlier, first, second = world.envelope("a"), world.envelope("a"), world.envelope("b")
    async with world.database.consuming(name, earlier) as tx:  # applied before, offset lost
        await tx.connection.execute(
            insert(world.applied).values(key="a", event_id=str(earlier.id), consumer=name)
        )
    await world.publish([earlier, first, second, first, earlier, second])
    consumer = world.consumer(name)
    with counting_commits(world) as commits:
        assert await world.once(consumer) == 6  # every copy settled
    assert commits[0] == 1
    assert sorted(await world.applied_rows(name)) == sorted(
        [("a", str(earlier.id)), ("a", str(first.id)), ("b", str(second.id))]
    )
    assert consumed(name, "applied") == 2
    assert consumed(name, "duplicate") == 4
    assert await world.lag(name) == 0


async def test_a_failing_event_is_singled_out_and_dead_lettered_as_before(world: World) -> None:
    name = "batch-poison"
    key, other = keys_apart(world, 2)
    before, poison, after = world.envelope(key), world.envelope(key), world.envelope(key)
    elsewhere = [world.envelope(other) for _ in range(3)]
    await world.publish([before, poison, after, *elsewhere])
    consumer = world.consumer(name, fail_on={str(poison.id)}, attempts=3)

    # The batch rolled back; one by one, the poison's partition stops at it and the rest apply.
    assert await world.once(consumer) == 4
    assert await world.applied_rows(name) == [
        (key, str(before.id)),
        *[(other, str(e.id)) for e in elsewhere],
    ]
    assert await world.log.dead_letters(name) == []
    # Attempts two and three, counted as before batching: then it is parked and `after` applies.
    assert await world.once(consumer) == 0
    assert await world.once(consumer) == 2
    letters = await world.log.dead_letters(name)
    assert [(letter.envelope.id, letter.attempts) for letter in letters] == [(poison.id, 3)]
    assert [event_id for k, event_id in await world.applied_rows(name) if k == key] == [
        str(before.id),
        str(after.id),
    ]
    assert consumed(name, "failed") == 2
    assert consumed(name, "dead_lettered") == 1
    assert consumed(name, "applied") == 5
    assert await consumer.lag() == 0


async def test_events_emitted_by_a_batch_reach_the_outbox_only_when_it_commits(
    world: World,
) -> None:
    poison = world.envelope("poison")
    sent = [world.envelope(f"complaint-{n}") for n in range(5)]

    async def answer(tx: Transaction, envelope: Envelope) -> None:
        await tx.emit(closed(f"answer-{envelope.key}"), key=envelope.key, causation=envelope)
        if envelope.id == poison.id:
            raise ValueError("cannot handle it")

    consumer = Consumer(
        name="batch-emits",
        database=world.database,
        event_log=world.log,
        topics=[TOPIC_CASES],
        handlers={ComplaintClosed.TYPE: answer},
    )
    world.consumers.append(consumer)
    await world.publish(sent)
    with counting_commits(world) as commits:
        assert await world.once(consumer) == len(sent)
    assert commits[0] == 1
    assert world.database.outbox_ready.is_set()
    outbox = await world.database.take_outbox(100)
    assert [stored.envelope().causation_id for _, _, stored in outbox] == [e.id for e in sent]

    # A batch that fails emits nothing of its own: only what the one-by-one path committed.
    await world.database.forget_outbox([row_id for row_id, _, _ in outbox])
    await world.publish([world.envelope("complaint-9"), poison])  # before it: applied
    await world.once(consumer)
    emitted = [envelope.key for _, _, envelope in await world.database.take_outbox(100)]
    assert emitted == ["complaint-9"]


async def test_an_outage_during_a_batch_waits_without_trying_each_event(world: World) -> None:
    name = "batch-outage"
    sent = [world.envelope(key) for _ in range(3) for key in keys_apart(world, 3)]
    outage = {"calls left": 4}

    async def apply(tx: Transaction, envelope: Envelope) -> None:
        if outage["calls left"] > 0:
            outage["calls left"] -= 1
            raise ConnectionRefusedError(111, "Connect call failed")
        await tx.connection.execute(
            insert(world.applied).values(key=envelope.key, event_id=str(envelope.id), consumer=name)
        )

    consumer = Consumer(
        name=name,
        database=world.database,
        event_log=world.log,
        topics=[TOPIC_CASES],
        handlers={ComplaintClosed.TYPE: apply},
        max_attempts=2,
    )
    world.consumers.append(consumer)
    await world.publish(sent)
    for _ in range(4):  # one handler call per poll: the poll waits whole, nothing one by one
        assert await world.once(consumer) == 0
    assert await world.once(consumer) == len(sent)
    assert await world.log.dead_letters(name) == []
    applied = await world.applied_rows(name)
    for key in {e.key for e in sent}:
        expected = [str(e.id) for e in sent if e.key == key]
        assert [event_id for k, event_id in applied if k == key] == expected


class Pauses:
    """A consumer's pause that waits for the test instead of the clock."""

    def __init__(self) -> None:
        self.asked: list[float] = []
        self.paused = asyncio.Event()
        self._go_on = asyncio.Event()

    async def __call__(self, seconds: float) -> None:
        self.asked.append(seconds)
        self._go_on.clear()
        self.paused.set()
        await self._go_on.wait()

    async def next(self) -> None:
        """Wait until the consumer pauses again (failing, not hanging, when it never does)."""
        async with asyncio.timeout(10):
            await self.paused.wait()
        self.paused.clear()

    def go_on(self) -> None:
        self._go_on.set()


async def test_a_gathering_consumer_pauses_after_a_partial_batch_and_applies_what_came_at_once(
    world: World,
) -> None:
    name = "gathering"
    template = world.consumer("template")  # its handler records into world.applied
    pauses = Pauses()
    consumer = Consumer(
        name=name,
        database=world.database,
        event_log=world.log,
        topics=[TOPIC_CASES],
        handlers={ComplaintClosed.TYPE: template._handlers[ComplaintClosed.TYPE]},
        batch=3,
        gather_seconds=0.05,
        pause=pauses,
    )
    await world.publish([world.envelope(f"first-{n}") for n in range(2)])
    running = asyncio.create_task(consumer.run(idle_wait=60))
    try:
        await pauses.next()  # two events: less than a batch, so it pauses for what follows
        assert len(await world.applied_rows()) == 2
        assert pauses.asked == [0.05]
        # One key, one partition: the log's limit is per partition.
        await world.publish([world.envelope("then") for _ in range(4)])
        with counting_commits(world) as commits:
            pauses.go_on()
            await pauses.next()  # a full batch (3) goes on at once; the fourth, then a pause
        assert len(await world.applied_rows()) == 6
        assert commits[0] == 2
        assert pauses.asked == [0.05, 0.05]
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
