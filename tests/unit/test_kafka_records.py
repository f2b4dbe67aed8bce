"""A Kafka record of an event: its value is the outbox's text byte for byte, and its partition
is the one a Java client would choose for the same key."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest
from aiokafka.partitioner import DefaultPartitioner

from yijian.bus.kafka.records import EVENT_ID, EVENT_TYPE, event_record, partition_for
from yijian.bus.protocol import StoredEnvelope
from yijian.contracts import Envelope
from yijian.contracts.events import ComplaintClosed, Org
from yijian.level import Level

# org.apache.kafka.common.utils.UtilsTest#testMurmur2: key -> Java's (signed) murmur2.
JAVA_MURMUR2 = [
    (b"21", -973932308),
    (b"foobar", -790332482),
    (b"a-little-bit-long-string", -985981536),
    (b"a-little-bit-longer-string", -1486304829),
    (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
    (b"abc", 479470107),
]


def envelope(key: str = "5b0d2a0c6c2d4a8e9f1e0a6b7c8d9e0f") -> Envelope:
    org = Org(code="620922100201", name="新华村", level=Level.VILLAGE)
    return Envelope.wrap(
        ComplaintClosed(complaint_id=key, by=org, level=Level.VILLAGE),
        key=key,
        producer="routing",
        occurred_at=datetime(2026, 3, 2, 9, 30, tzinfo=UTC),
    )


@pytest.mark.parametrize(("key", "java"), JAVA_MURMUR2)
def test_a_key_goes_to_the_partition_javas_default_partitioner_picks(key: bytes, java: int) -> None:
    for partitions in (1, 3, 6, 12, 48):
        # Java: Utils.toPositive(Utils.murmur2(keyBytes)) % numPartitions
        assert partition_for(key, partitions) == (java & 0x7FFFFFFF) % partitions


def test_the_partition_agrees_with_aiokafkas_partitioner_for_any_key() -> None:
    chance = random.Random(620922)
    for _ in range(2_000):
        key = chance.randbytes(chance.randrange(0, 80))
        partitions = chance.choice([1, 6, 12, 7])
        expected = DefaultPartitioner()(key, list(range(partitions)), list(range(partitions)))
        assert partition_for(key, partitions) == expected


def test_a_stored_envelope_is_sent_as_the_text_it_was_stored_as() -> None:
    # Spacing and a Chinese name unescaped: a serialiser would write neither the same way,
    # so an equal value proves the text was passed on, not rebuilt.
    original = envelope()
    text = original.model_dump_json(indent=1).replace('"新华村"', '"\\u65b0华村"')
    record = event_record("staging.yijian.cases.v1", StoredEnvelope.from_text(text))
    assert record.value == text.encode()
    assert record.topic == "staging.yijian.cases.v1"
    assert record.key == original.key.encode()
    assert record.headers == [
        (EVENT_TYPE, b"complaint.closed"),
        (EVENT_ID, str(original.id).encode()),
    ]


def test_an_envelope_and_its_stored_text_make_the_same_record() -> None:
    original = envelope()
    stored = StoredEnvelope.from_text(original.model_dump_json())
    assert event_record("t", original) == event_record("t", stored)
    assert stored.envelope() == original
