"""Two replicas of one consumer group on Kafka: the partitions move between them while events
flow (one joins, later one leaves), and every event is still applied once, in order per key."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

import pytest
from sqlalchemy import insert

from tests.integration.event_logs import World, world_on
from yijian.bus.consumer import Consumer
from yijian.bus.outbox import Transaction
from yijian.contracts import Envelope
from yijian.contracts.events import TOPIC_CASES, ComplaintClosed

pytestmark = pytest.mark.integration

KEYS = [f"complaint-{number}" for number in range(40)]


def replica(world: World, instance: str, seen: dict[str, int]) -> Consumer:
    """A replica of the group "routing"; ``seen`` counts what each replica applied."""

    async def record(tx: Transaction, envelope: Envelope) -> None:
        await tx.connection.execute(
            insert(world.applied).values(
                key=envelope.key, event_id=str(envelope.id), consumer="routing"
            )
        )
        seen[instance] = seen.get(instance, 0) + 1

    consumer = Consumer(
        name="routing",
        database=world.database,
        event_log=world.log,
        topics=[TOPIC_CASES],
        handlers={ComplaintClosed.TYPE: record},
        batch=20,  # small batches, so a rebalance finds work in hand
    )
    world.consumers.append(consumer)
    return consumer


async def applied_at_least(world: World, count: int, limit: float = 60.0) -> None:
    deadline = time.monotonic() + limit
    while len(await world.applied_rows()) < count:
        assert time.monotonic() < deadline, f"fewer than {count} events applied in {limit:g}s"
        await asyncio.sleep(0.1)


async def test_a_rebalance_between_two_replicas_applies_every_event_once(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    async with world_on("kafka", tmp_path, kafka_bootstrap) as world:
        sent: list[Envelope] = []

        async def publish(count: int) -> None:
            batch = [world.envelope(KEYS[(len(sent) + n) % len(KEYS)]) for n in range(count)]
            await world.publish(batch)
            sent.extend(batch)

        seen: dict[str, int] = {}
        first, second = replica(world, "first", seen), replica(world, "second", seen)
        tasks = {"first": asyncio.create_task(first.run(idle_wait=0.2, retry_wait=0.1))}
        try:
            await publish(400)
            await applied_at_least(world, 50)
            # The second replica joins mid-stream: the group rebalances under load.
            tasks["second"] = asyncio.create_task(second.run(idle_wait=0.2, retry_wait=0.1))
            for _ in range(8):
                await publish(50)
                await asyncio.sleep(0.2)
            await applied_at_least(world, len(sent))
            assert seen.get("second", 0) > 0, "the second replica never got a partition"

            # The first replica leaves: the second takes over all partitions.
            tasks.pop("first").cancel()
            await world.close(first)
            await publish(200)
            await applied_at_least(world, len(sent))
        finally:
            for task in tasks.values():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

        applied = await world.applied_rows()
        assert len(applied) == len(sent)  # none twice
        assert {event_id for _, event_id in applied} == {str(e.id) for e in sent}  # none lost
        for key in KEYS:
            assert [i for k, i in applied if k == key] == [str(e.id) for e in sent if e.key == key]
        assert await world.lag("routing") == 0
