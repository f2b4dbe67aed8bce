"""Reading and replaying the dead-letter topics, for operators (``yijian dlq list|replay``).

A dead letter is the original record copied to ``<topic>.dlq`` with headers saying which
group gave up on it, why and after how many attempts. Replaying puts the event back on its
topic and then writes a marker record into the dead-letter topic, so the letter is listed as
replayed from then on: Kafka records cannot be changed, only followed by newer ones.

A dead letter's number is ``offset * 1000 + n * 100 + partition``, where ``n`` is its
dead-letter topic's place (1–9) in the topic catalog: stable, and short enough to type.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from yijian.bus.kafka.records import (
    EVENT_ID,
    EVENT_TYPE,
    REPLAYED,
    OutgoingRecord,
    UndecodableRecord,
    decode,
    header_map,
    origin_of,
    replay_marker,
)
from yijian.bus.protocol import DeadLetter

if TYPE_CHECKING:
    from yijian.bus.kafka.eventlog import KafkaEventLog


@dataclass(frozen=True)
class FoundLetter:
    dead_letter: DeadLetter
    replayed: bool
    dead_letter_topic: str  # as named in Kafka
    original_topic: str  # as named in Kafka
    key: bytes
    value: bytes


def letter_id(topic_number: int, partition: int, offset: int) -> int:
    return offset * 1000 + topic_number * 100 + partition


async def read(
    event_log: KafkaEventLog, reader: Callable[[], AIOKafkaConsumer]
) -> list[FoundLetter]:
    """Every dead letter of the catalog's dead-letter topics, and whether it was replayed."""
    numbers = {
        event_log.physical(spec.name): number
        for number, spec in enumerate(event_log.catalog.dead_letter_topics, start=1)
    }
    partitions = await event_log.partitions(list(numbers))
    consumer = reader()
    await consumer.start()
    try:
        records = await read_to_end(consumer, partitions, event_log.request_timeout_ms / 1000)
    finally:
        await consumer.stop()
    letters: list[FoundLetter] = []
    replayed: set[int] = set()
    for partition, record in records:
        headers = header_map(record.headers)
        if REPLAYED in headers:
            replayed.add(int(headers[REPLAYED]))
            continue
        origin = origin_of(headers)
        if origin is None:
            continue
        try:
            envelope = decode(record.value)
        except UndecodableRecord:
            continue  # parked bytes that were never an event: nothing to replay
        number = letter_id(numbers[partition.topic], partition.partition, record.offset)
        letters.append(
            FoundLetter(
                DeadLetter(
                    id=number,
                    group=origin.group,
                    topic=event_log.logical(origin.topic),
                    partition=origin.partition,
                    offset=origin.offset,
                    envelope=envelope,
                    error=origin.error,
                    attempts=origin.attempts,
                ),
                replayed=False,
                dead_letter_topic=partition.topic,
                original_topic=origin.topic,
                key=record.key or b"",
                value=record.value or b"",
            )
        )
    return [
        FoundLetter(
            letter.dead_letter,
            letter.dead_letter.id in replayed,
            letter.dead_letter_topic,
            letter.original_topic,
            letter.key,
            letter.value,
        )
        for letter in letters
    ]


async def replay(
    event_log: KafkaEventLog, reader: Callable[[], AIOKafkaConsumer], dead_letter_id: int
) -> bool:
    letters = await read(event_log, reader)
    letter = next((found for found in letters if found.dead_letter.id == dead_letter_id), None)
    if letter is None or letter.replayed:
        return False
    envelope = letter.dead_letter.envelope
    # The event first, the marker after: a crash in between replays it twice at worst, and
    # consumers drop the second copy by its event id.
    await event_log.producer.send(
        [
            OutgoingRecord(
                letter.original_topic,
                letter.key,
                letter.value,
                [(EVENT_TYPE, envelope.type.encode()), (EVENT_ID, str(envelope.id).encode())],
            )
        ]
    )
    await event_log.producer.send(
        [replay_marker(letter.dead_letter_topic, letter.key, dead_letter_id)]
    )
    return True


async def read_to_end(
    consumer: AIOKafkaConsumer, partitions: list[TopicPartition], timeout: float
) -> list[tuple[TopicPartition, Any]]:
    if not partitions:
        return []
    consumer.assign(partitions)
    starts: dict[TopicPartition, int] = await consumer.beginning_offsets(partitions)
    ends: dict[TopicPartition, int] = await consumer.end_offsets(partitions)
    # An explicit position: a reset (seek_to_beginning, auto_offset_reset) is resolved later
    # and could land after records arrive, or at the end.
    for partition in partitions:
        consumer.seek(partition, starts[partition])
    records: list[tuple[TopicPartition, Any]] = []
    remaining = {partition for partition in partitions if ends[partition] > 0}
    deadline = time.monotonic() + timeout
    while remaining:
        if time.monotonic() > deadline:
            raise TimeoutError(f"could not read the dead letters within {timeout:g}s")
        batches = await consumer.getmany(*remaining, timeout_ms=500)
        for partition, batch in batches.items():
            records += [(partition, record) for record in batch]
        for partition in list(remaining):
            if await consumer.position(partition) >= ends[partition]:
                remaining.discard(partition)
        await asyncio.sleep(0)
    return records
