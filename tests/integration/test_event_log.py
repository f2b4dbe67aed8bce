"""Both transports keep the same promises: order per key, groups with their own offsets,
at-least-once delivery applied once, poison events parked with the reason and replayable, and
an outbox that publishes only what committed. Each test runs on the embedded log and on Kafka.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import insert

from tests.integration.event_logs import Transport, World, closed, world_on
from yijian.bus.relay import OutboxRelay

pytestmark = pytest.mark.integration


@pytest.fixture(params=["embedded", "kafka"])
async def world(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[World]:
    transport: Transport = request.param
    bootstrap = request.getfixturevalue("kafka_bootstrap") if transport == "kafka" else None
    async with world_on(transport, tmp_path, bootstrap) as world:
        yield world


async def test_each_keys_events_arrive_in_order(world: World) -> None:
    sent = [world.envelope(key) for _ in range(5) for key in ("a", "b", "c", "d")]
    await world.publish(sent)
    consumer = world.consumer("g")
    assert await world.drain(consumer, len(sent)) == len(sent)
    applied = await world.applied_rows()
    assert len(applied) == len(sent)
    for key in "abcd":
        expected = [str(e.id) for e in sent if e.key == key]
        assert [event_id for k, event_id in applied if k == key] == expected


async def test_groups_have_their_own_offsets(world: World) -> None:
    first, second = world.envelope("a"), world.envelope("a")  # one key: one partition
    await world.publish([first])
    one = world.consumer("one")
    assert await world.once(one) == 1
    await world.close(one)
    await world.publish([second])
    assert await world.lag("one") == 1  # the first is committed, the second is not

    # A new instance of the group resumes after the commit: it settles only the second.
    again = world.consumer("one")
    assert await world.drain(again, 1) == 1
    two = world.consumer("two")
    assert await world.drain(two, 2) == 2  # another group starts from the beginning
    expected = [("a", str(first.id)), ("a", str(second.id))]
    assert await world.applied_rows("one") == expected
    assert await world.applied_rows("two") == expected
    assert await world.lag("one") == 0
    assert await world.lag("two") == 0


async def test_a_redelivery_after_a_crash_is_applied_once(world: World) -> None:
    envelope = world.envelope("a")
    await world.publish([envelope])
    # The handler's transaction committed, then the process died before the offset commit:
    async with world.database.consuming("g", envelope) as tx:
        await tx.connection.execute(
            insert(world.applied).values(key="a", event_id=str(envelope.id), consumer="g")
        )
    assert await world.lag("g") == 1
    assert await world.once(world.consumer("g")) == 1  # settled as a duplicate
    assert len(await world.applied_rows()) == 1
    assert await world.lag("g") == 0


async def test_a_poison_event_is_dead_lettered_with_the_reason_and_can_be_replayed(
    world: World,
) -> None:
    poison = world.envelope("poison")
    await world.publish([poison])
    failing = world.consumer("g", fail_on={str(poison.id)}, attempts=3)
    for _ in range(3):
        await world.once(failing)
    letters = await world.log.dead_letters("g")
    assert len(letters) == 1
    assert letters[0].attempts == 3
    assert letters[0].group == "g"
    assert letters[0].envelope.key == "poison"
    assert f"cannot handle {poison.key}" in letters[0].error
    assert await world.lag("g") == 0  # the partition moved on

    # The same running consumer goes on after the parked record and never parks it again.
    follower = world.envelope("poison")  # same key, so the same partition
    await world.publish([follower])
    assert await world.drain(failing, 1) == 1
    assert len(await world.log.dead_letters()) == 1
    await world.close(failing)

    assert await world.log.replay_dead_letter(letters[0].id)
    assert not await world.log.replay_dead_letter(letters[0].id)  # only once
    assert await world.log.dead_letters() == []
    assert len(await world.log.dead_letters(include_replayed=True)) == 1
    fixed = world.consumer("g")
    assert await world.drain(fixed, 1) == 1
    assert [event_id for _, event_id in await world.applied_rows()] == [
        str(follower.id),
        str(letters[0].envelope.id),
    ]


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
    assert await world.drain(consumer, 1) == 1
    assert [key for key, _ in await world.applied_rows()] == ["kept"]
    assert await world.stored() == 1
