"""Dead letters on Kafka: the parked record says why, and an operator lists and replays it with
the ``yijian dlq`` commands, which pick the transport from YIJIAN_BUS."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from typer.testing import CliRunner

from services.cli import app
from tests.integration.event_logs import Transport, World, world_on
from yijian.bus.kafka import KafkaEventLog
from yijian.bus.kafka.dead_letters import read_to_end
from yijian.contracts import Envelope
from yijian.contracts.events import TOPIC_CASES

pytestmark = pytest.mark.integration


async def dead_letter_records(world: World) -> list[tuple[bytes, dict[str, str]]]:
    """The raw records of the cases topic's dead-letter topic: value and headers."""
    assert isinstance(world.log, KafkaEventLog)
    topic = TopicPartition(world.log.physical(TOPIC_CASES) + ".dlq", 0)
    reader = AIOKafkaConsumer(bootstrap_servers=world.log.bootstrap, enable_auto_commit=False)
    await reader.start()
    try:
        records = await read_to_end(reader, [topic], timeout=30)
    finally:
        await reader.stop()
    return [
        (record.value, {name: value.decode() for name, value in record.headers})
        for _, record in records
    ]


async def park(world: World, poison: Envelope) -> None:
    await world.publish([poison])
    failing = world.consumer("routing", fail_on={str(poison.id)}, attempts=2)
    for _ in range(2):
        await world.once(failing)
    await world.close(failing)


async def test_a_dead_letter_carries_the_reason_and_where_it_came_from(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    async with world_on("kafka", tmp_path, kafka_bootstrap) as world:
        assert isinstance(world.log, KafkaEventLog)
        poison = world.envelope("complaint-7")
        await park(world, poison)
        [(value, headers)] = await dead_letter_records(world)
        assert Envelope.model_validate_json(value) == poison
        assert headers["x-yijian-error"] == "ValueError: cannot handle complaint-7"
        assert headers["x-yijian-attempts"] == "2"
        assert headers["x-yijian-group"] == "routing"
        assert headers["x-yijian-original-topic"] == world.log.physical(TOPIC_CASES)
        assert headers["x-yijian-original-offset"] == "0"
        assert 0 <= int(headers["x-yijian-original-partition"]) < 12
        assert headers["x-yijian-event-type"] == "complaint.closed"
        assert headers["x-yijian-event-id"] == str(poison.id)


@pytest.mark.parametrize("transport", ["embedded", "kafka"])
async def test_an_operator_lists_and_replays_dead_letters(
    request: pytest.FixtureRequest, tmp_path: Path, transport: Transport
) -> None:
    bootstrap = request.getfixturevalue("kafka_bootstrap") if transport == "kafka" else None
    async with world_on(transport, tmp_path, bootstrap) as world:
        poison = world.envelope("complaint-8")
        await park(world, poison)
        # The command finds the transport from the settings, as on a server.
        environment = {"YIJIAN_DATA_DIR": str(tmp_path / "data")}
        if isinstance(world.log, KafkaEventLog):
            environment |= {
                "YIJIAN_BUS": "kafka",
                "YIJIAN_KAFKA_BOOTSTRAP": world.log.bootstrap,
                "YIJIAN_KAFKA_TOPIC_PREFIX": world.log.prefix,
                "YIJIAN_KAFKA_TOPIC_PROFILE": "local",
            }
        else:
            environment |= {
                "YIJIAN_BUS": "embedded",
                "YIJIAN_EVENTLOG_DATABASE_URL": str(world.log.engine.url),
            }

        def yijian(*arguments: str) -> tuple[int, str]:
            # The command runs its own event loop: give it a thread of its own.
            result = CliRunner().invoke(app, list(arguments), env=environment)
            return result.exit_code, result.output

        code, listing = await asyncio.to_thread(yijian, "dlq", "list")
        assert code == 0, listing
        [line] = listing.splitlines()
        assert "routing" in line
        assert "yijian.cases.v1" in line
        assert "complaint.closed" in line
        assert "key=complaint-8" in line
        assert "cannot handle complaint-8" in line
        number = line.split()[0].removeprefix("#")

        assert await asyncio.to_thread(yijian, "dlq", "replay", number) == (
            0,
            f"replayed #{number}\n",
        )
        code, again = await asyncio.to_thread(yijian, "dlq", "replay", number)
        assert code == 1
        assert "no unreplayed dead letter" in again
        assert await asyncio.to_thread(yijian, "dlq", "list") == (0, "no dead letters\n")
        assert not (tmp_path / "data").exists()  # no service was started for it

        # The group that gave up on it applies it now that it is back on its topic.
        fixed = world.consumer("routing")
        assert await world.drain(fixed, 1) == 1
        assert await world.applied_rows() == [("complaint-8", str(poison.id))]


async def test_a_record_that_is_no_event_is_parked_and_the_partition_goes_on(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    async with world_on("kafka", tmp_path, kafka_bootstrap) as world:
        assert isinstance(world.log, KafkaEventLog)
        good = world.envelope("complaint-9")
        await world.publish([good])
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
        await producer.start()
        try:  # the same key, so the same partition, right after the good event
            await producer.send_and_wait(
                world.log.physical(TOPIC_CASES), b"{not json", key=b"complaint-9"
            )
        finally:
            await producer.stop()
        consumer = world.consumer("routing")
        assert await world.drain(consumer, 1) == 1
        assert await world.applied_rows() == [("complaint-9", str(good.id))]
        assert await world.lag("routing") == 0  # committed past the unreadable record
        [(value, headers)] = await dead_letter_records(world)
        assert value == b"{not json"
        assert headers["x-yijian-error"].startswith("not an event envelope")
        assert headers["x-yijian-group"] == "routing"
        assert headers["x-yijian-original-offset"] == "1"
