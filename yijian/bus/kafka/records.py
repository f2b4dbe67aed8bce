"""How an event is laid out in a Kafka record, which partition it goes to, and how a dead
letter is marked.

The value is the envelope's JSON, the key the complaint id. ``partition_for`` hashes the key
with murmur2 as Java's clients do, so every producer puts one complaint in the same partition.
Headers repeat the event type and id so tools can filter without parsing the value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from aiokafka.partitioner import murmur2
from pydantic import ValidationError

from yijian.bus.protocol import StoredEnvelope
from yijian.contracts import Envelope

Headers = list[tuple[str, bytes]]

EVENT_TYPE = "x-yijian-event-type"
EVENT_ID = "x-yijian-event-id"
ERROR = "x-yijian-error"
ATTEMPTS = "x-yijian-attempts"
GROUP = "x-yijian-group"
ORIGINAL_TOPIC = "x-yijian-original-topic"
ORIGINAL_PARTITION = "x-yijian-original-partition"
ORIGINAL_OFFSET = "x-yijian-original-offset"
# On a marker record in a dead-letter topic: this dead letter was put back on its topic.
REPLAYED = "x-yijian-replayed"

MAX_ERROR_BYTES = 4000


@dataclass(frozen=True)
class OutgoingRecord:
    topic: str  # as named in Kafka (with any prefix)
    key: bytes
    value: bytes
    headers: Headers


def partition_for(key: bytes, partitions: int) -> int:
    """The partition Java's default partitioner picks for ``key`` among ``partitions``
    (aiokafka's ``DefaultPartitioner`` does the same with the same murmur2)."""
    return int(murmur2(key) & 0x7FFFFFFF) % partitions


class UndecodableRecord(ValueError):
    """A record whose value is not an event envelope."""


def event_record(topic: str, envelope: Envelope | StoredEnvelope) -> OutgoingRecord:
    """The record of one event; a stored envelope's text is its value, byte for byte."""
    stored = StoredEnvelope.of(envelope)
    return OutgoingRecord(
        topic=topic,
        key=stored.key.encode(),
        value=stored.text.encode(),
        headers=[(EVENT_TYPE, stored.type.encode()), (EVENT_ID, stored.id.encode())],
    )


def decode(value: bytes | None) -> Envelope:
    if value is None:
        raise UndecodableRecord("the record has no value")
    try:
        return Envelope.model_validate_json(value)
    except ValidationError as error:
        raise UndecodableRecord(f"not an event envelope: {error.error_count()} errors") from error


@dataclass(frozen=True)
class Origin:
    """Where a dead letter came from and why it was parked."""

    group: str
    topic: str  # as named in Kafka
    partition: int
    offset: int
    error: str
    attempts: int


def dead_letter_record(
    dead_letter_topic: str,
    key: bytes,
    value: bytes,
    headers: Sequence[tuple[str, bytes]],
    origin: Origin,
) -> OutgoingRecord:
    """The record parked in ``dead_letter_topic``: the original bytes, with the reason."""
    kept = [
        (name, data)
        for name, data in headers
        if not name.startswith("x-yijian-") or name in (EVENT_TYPE, EVENT_ID)
    ]
    return OutgoingRecord(
        topic=dead_letter_topic,
        key=key,
        value=value,
        headers=[
            *kept,
            (ERROR, origin.error.encode()[:MAX_ERROR_BYTES]),
            (ATTEMPTS, str(origin.attempts).encode()),
            (GROUP, origin.group.encode()),
            (ORIGINAL_TOPIC, origin.topic.encode()),
            (ORIGINAL_PARTITION, str(origin.partition).encode()),
            (ORIGINAL_OFFSET, str(origin.offset).encode()),
        ],
    )


def replay_marker(dead_letter_topic: str, key: bytes, dead_letter_id: int) -> OutgoingRecord:
    return OutgoingRecord(
        topic=dead_letter_topic,
        key=key,
        value=b"",
        headers=[(REPLAYED, str(dead_letter_id).encode())],
    )


def header_map(headers: Sequence[tuple[str, bytes]] | None) -> Mapping[str, str]:
    return {name: data.decode(errors="replace") for name, data in headers or ()}


def origin_of(headers: Mapping[str, str]) -> Origin | None:
    """The origin a dead letter's headers describe; None for a record that is not one."""
    try:
        return Origin(
            group=headers[GROUP],
            topic=headers[ORIGINAL_TOPIC],
            partition=int(headers[ORIGINAL_PARTITION]),
            offset=int(headers[ORIGINAL_OFFSET]),
            error=headers[ERROR],
            attempts=int(headers[ATTEMPTS]),
        )
    except (KeyError, ValueError):
        return None
