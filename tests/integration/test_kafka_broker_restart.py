"""The Kafka broker restarts while services publish and consume: nothing is lost or doubled."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

import pytest

from tests.integration.conftest import LocalKafka
from tests.integration.event_logs import World, closed, world_on
from yijian.bus.relay import OutboxRelay

pytestmark = pytest.mark.integration

KEYS = [f"complaint-{number}" for number in range(12)]


async def write(world: World, count: int, sent: list[tuple[str, str]]) -> None:
    """Commit ``count`` events into the outbox, as handlers do, a few at a time."""
    for number in range(count):
        key = KEYS[number % len(KEYS)]
        async with world.database.transaction() as tx:
            envelope = await tx.emit(closed(key), key=key)
        sent.append((key, str(envelope.id)))
        if number % 10 == 0:
            await asyncio.sleep(0.01)  # let the relay and the consumer run in between


async def wait_for(condition_holds: object, what: str, limit: float = 60.0) -> None:
    assert callable(condition_holds)
    deadline = time.monotonic() + limit
    while not await condition_holds():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.2)


async def test_a_broker_restart_under_traffic_loses_nothing(
    local_kafka: LocalKafka, tmp_path: Path
) -> None:
    async with world_on("kafka", tmp_path, local_kafka.bootstrap) as world:
        relay = OutboxRelay(world.database, world.log)
        consumer = world.consumer("after-restart")
        running = [
            asyncio.create_task(relay.run(idle_wait=0.1)),
            asyncio.create_task(consumer.run(idle_wait=0.2, retry_wait=0.2)),
        ]
        sent: list[tuple[str, str]] = []
        try:
            await write(world, 150, sent)

            async def some_applied() -> bool:
                return len(await world.applied_rows()) > 0

            await wait_for(some_applied, "the consumer to apply the first events")
            # The restart runs in a thread while the service goes on writing events.
            restart = asyncio.create_task(asyncio.to_thread(local_kafka.restart))
            while not restart.done():
                await write(world, 10, sent)
            await restart
            await write(world, 150, sent)

            async def all_applied() -> bool:
                return len(await world.applied_rows()) >= len(sent)

            await wait_for(all_applied, "every event to reach the consumer after the restart")
        finally:
            for task in running:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

        assert await world.database.outbox_backlog() == 0
        applied = await world.applied_rows()
        assert sorted(event_id for _, event_id in applied) == sorted(i for _, i in sent)
        for key in KEYS:  # and in each complaint's order
            assert [i for k, i in applied if k == key] == [i for k, i in sent if k == key]
        assert await world.lag("after-restart") == 0
