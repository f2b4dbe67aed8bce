"""One idempotent Kafka producer per process, and the wait for the broker's confirmation.

``send`` returns only when every record is acknowledged by all in-sync replicas (acks=all),
or raises ``PublishFailed``: the outbox relay then keeps its rows and tries again later, so an
outage delays events but loses none. Idempotence keeps the broker from storing a retried batch
twice and keeps batches in order per partition while aiokafka retries through a broker restart.

``send`` builds the Kafka batches itself, each for the partition Java's clients would choose
for its records' keys (``records.partition_for``), and hands them to aiokafka whole.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from typing import Any

import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from yijian.bus.kafka.records import OutgoingRecord, partition_for

log = structlog.get_logger(__name__)


class PublishFailed(Exception):
    """Kafka did not confirm every record; the caller keeps them and tries again."""


def _retrieve(future: asyncio.Future[Any]) -> None:
    # A confirmation that arrives after we stopped waiting is not an error to report twice.
    if not future.cancelled():
        future.exception()


class ConfirmedProducer:
    def __init__(self, factory: Callable[[], AIOKafkaProducer], delivery_timeout: float) -> None:
        self._factory = factory
        self._delivery_timeout = delivery_timeout
        self._producer: AIOKafkaProducer | None = None
        self._starting = asyncio.Lock()

    async def _started(self) -> AIOKafkaProducer:
        async with self._starting:
            if self._producer is None:
                producer = self._factory()
                try:
                    await producer.start()
                except BaseException:
                    with contextlib.suppress(Exception):
                        await producer.stop()
                    raise
                self._producer = producer
            return self._producer

    async def send(self, records: Sequence[OutgoingRecord]) -> None:
        """Send in order and wait until Kafka confirmed each one."""
        if not records:
            return
        try:
            producer = await self._started()
        except KafkaError as error:
            raise PublishFailed(f"cannot reach Kafka: {error}") from error
        futures: list[asyncio.Future[Any]] = []
        try:
            for (topic, partition), batch in await _batches(producer, records):
                futures.append(await producer.send_batch(batch, topic, partition=partition))
        except KafkaError as error:
            for future in futures:
                future.add_done_callback(_retrieve)
            raise PublishFailed(f"Kafka refused a record: {error}") from error
        done, pending = await asyncio.wait(futures, timeout=self._delivery_timeout)
        if pending:
            # They may still arrive (the producer retries): a second copy from our caller's
            # retry is harmless, consumers drop an event id they have seen.
            for future in pending:
                future.add_done_callback(_retrieve)
            raise PublishFailed(
                f"{len(pending)} of {len(futures)} batches not confirmed "
                f"within {self._delivery_timeout:g}s"
            )
        failures = [future.exception() for future in done if future.exception() is not None]
        if failures:
            # A producer that failed a batch may be fenced or out of sequence: start afresh.
            await self._reset()
            raise PublishFailed(f"Kafka failed {len(failures)} batches: {failures[0]}") from (
                failures[0]
            )

    async def _reset(self) -> None:
        async with self._starting:
            producer, self._producer = self._producer, None
        if producer is not None:
            log.warning("restarting the Kafka producer after a failed batch")
            await _stop(producer, self._delivery_timeout)

    async def close(self) -> None:
        async with self._starting:
            producer, self._producer = self._producer, None
        if producer is not None:
            await _stop(producer, self._delivery_timeout)


async def _batches(
    producer: AIOKafkaProducer, records: Sequence[OutgoingRecord]
) -> list[tuple[tuple[str, int], Any]]:
    """The records in Kafka batches, each for one partition, in the order they are to be sent.

    Built here rather than record by record through ``producer.send``: that path costs ~25 µs a
    record (a metadata wait, aiokafka's pure-Python murmur2, a future per record and our wait
    on each), where a batch has one future. A partition's records stay in their order, in
    batches submitted oldest first. Closed batches go out at once instead of lingering.
    """
    counts = {
        topic: len(await producer.partitions_for(topic))
        for topic in dict.fromkeys(record.topic for record in records)
    }
    ready: list[tuple[tuple[str, int], Any]] = []
    filling: dict[tuple[str, int], Any] = {}
    for record in records:
        slot = (record.topic, partition_for(record.key, counts[record.topic]))
        batch = filling.get(slot)
        if batch is not None and _append(batch, record):
            continue
        if batch is not None:
            ready.append((slot, batch))
        batch = filling[slot] = producer.create_batch()
        _append(batch, record)  # an empty batch takes any one record, however large
    ready += filling.items()
    for _, batch in ready:
        batch.close()
    return ready


def _append(batch: Any, record: OutgoingRecord) -> bool:
    """Whether ``batch`` had room for ``record`` (it took it) or is full."""
    added = batch.append(timestamp=None, key=record.key, value=record.value, headers=record.headers)
    return added is not None


async def _stop(producer: AIOKafkaProducer, timeout: float) -> None:
    """Stop, flushing what it holds; give up after ``timeout`` (the outbox still has them)."""
    try:
        await asyncio.wait_for(producer.stop(), timeout)
    except (TimeoutError, KafkaError):
        log.warning("the Kafka producer did not stop cleanly")
