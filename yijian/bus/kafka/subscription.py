"""A consumer group's view of Kafka, shaped like the embedded log's (``Subscription``).

Offsets are committed by hand, only for records the service applied in a committed database
transaction (the ``Consumer`` calls ``commit`` after its transaction), so a crash re-delivers
and never skips. On a rebalance the group waits for the batch in hand to be applied and
committed before giving its partitions away, and then forgets what it knew about them; should
the new owner still see a record twice, the processed-event table turns it into a no-op.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError

from yijian.bus.kafka.records import (
    Origin,
    UndecodableRecord,
    dead_letter_record,
    decode,
    event_record,
)
from yijian.bus.protocol import Delivery
from yijian.waiting import set_within

if TYPE_CHECKING:
    from yijian.bus.kafka.eventlog import KafkaEventLog

log = structlog.get_logger(__name__)


class KafkaSubscription:
    def __init__(
        self,
        event_log: KafkaEventLog,
        group: str,
        topics: Sequence[str],
        factory: Callable[[], AIOKafkaConsumer],
        drain_timeout: float,
    ) -> None:
        self._log = event_log
        self._group = group
        self._logical_topics = list(topics)
        self._topics = [event_log.physical(topic) for topic in topics]
        self._factory = factory
        self._drain_timeout = drain_timeout
        self._consumer: AIOKafkaConsumer | None = None
        # Set while no batch is in hand: a rebalance waits for it before revoking.
        self._idle = asyncio.Event()
        self._idle.set()
        # First offset per partition of the batch in hand, to go back to should the batch
        # never be committed (the caller failed half-way).
        self._in_hand: dict[TopicPartition, int] = {}
        # Undecodable records already parked: skipped, and committed along with what follows.
        self._parked: set[tuple[TopicPartition, int]] = set()

    async def _started(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            consumer = self._factory()
            consumer.subscribe(self._topics, listener=_Rebalance(self))
            try:
                await consumer.start()
            except BaseException:
                with contextlib.suppress(Exception):
                    await consumer.stop()
                raise
            self._consumer = consumer
        return self._consumer

    async def poll(self, max_records: int, timeout: float) -> list[Delivery]:
        consumer = await self._started()
        self._go_back_to_unsettled(consumer)
        self._idle.set()
        batches: dict[TopicPartition, list[Any]] = await consumer.getmany(
            timeout_ms=int(timeout * 1000), max_records=max_records
        )
        for partition, records in batches.items():
            if records:  # should this batch never be committed, poll from here again
                self._in_hand.setdefault(partition, records[0].offset)
        deliveries: list[Delivery] = []
        for partition, records in batches.items():
            for record in records:
                try:
                    envelope = decode(record.value)
                except UndecodableRecord as error:
                    await self._park(partition, record, str(error))
                    continue
                topic = self._log.logical(partition.topic)
                deliveries.append(Delivery(topic, partition.partition, record.offset, envelope))
        if deliveries:
            self._idle.clear()
        return deliveries

    def _go_back_to_unsettled(self, consumer: AIOKafkaConsumer) -> None:
        assigned = consumer.assignment()
        for partition, offset in self._in_hand.items():
            if partition in assigned:
                consumer.seek(partition, offset)
        self._in_hand.clear()

    async def commit(self, deliveries: Sequence[Delivery]) -> None:
        try:
            await self._commit(deliveries)
        finally:
            self._in_hand.clear()
            self._idle.set()

    async def _commit(self, deliveries: Sequence[Delivery]) -> None:
        consumer = self._consumer
        if consumer is None or not deliveries:
            return
        offsets: dict[TopicPartition, int] = {}
        for delivery in deliveries:
            partition = TopicPartition(self._log.physical(delivery.topic), delivery.partition)
            offsets[partition] = max(offsets.get(partition, 0), delivery.offset + 1)
        for partition, next_offset in offsets.items():
            while (partition, next_offset) in self._parked:
                self._parked.discard((partition, next_offset))
                next_offset += 1
            offsets[partition] = next_offset
        assigned = consumer.assignment()
        owned = {
            partition: offset for partition, offset in offsets.items() if partition in assigned
        }
        if not owned:
            return
        try:
            await consumer.commit(owned)
        except (CommitFailedError, IllegalStateError) as error:
            # The group rebalanced first: the new owner re-delivers from the last commit and
            # the processed-event table makes those deliveries no-ops.
            log.warning("offset commit lost to a rebalance", group=self._group, error=str(error))

    def rewind(self, delivery: Delivery) -> None:
        consumer = self._consumer
        partition = TopicPartition(self._log.physical(delivery.topic), delivery.partition)
        if consumer is not None and partition in consumer.assignment():
            consumer.seek(partition, delivery.offset)
        self._in_hand.pop(partition, None)

    async def dead_letter(self, delivery: Delivery, error: str, attempts: int) -> None:
        topic = self._log.physical(delivery.topic)
        origin = Origin(self._group, topic, delivery.partition, delivery.offset, error, attempts)
        original = event_record(topic, delivery.envelope)
        record = dead_letter_record(
            self._log.dead_letter_topic(topic),
            original.key,
            original.value,
            original.headers,
            origin,
        )
        await self._log.producer.send([record])
        await self._commit([delivery])

    async def _park(self, partition: TopicPartition, record: Any, error: str) -> None:
        """Dead-letter a record no consumer could read, once, and step over it."""
        if (partition, record.offset) in self._parked:
            return
        log.error(
            "undecodable record dead-lettered",
            group=self._group,
            topic=partition.topic,
            partition=partition.partition,
            offset=record.offset,
            error=error,
        )
        origin = Origin(self._group, partition.topic, partition.partition, record.offset, error, 1)
        parked = dead_letter_record(
            self._log.dead_letter_topic(partition.topic),
            record.key or b"",
            record.value or b"",
            list(record.headers or ()),
            origin,
        )
        await self._log.producer.send([parked])
        self._parked.add((partition, record.offset))

    async def _revoked(self, partitions: set[TopicPartition]) -> None:
        # Let the batch in hand be applied and committed while the partitions are still ours.
        await set_within(self._idle, self._drain_timeout)
        for partition in partitions:
            self._in_hand.pop(partition, None)
        self._parked = {slot for slot in self._parked if slot[0] not in partitions}

    async def lag(self) -> int:
        """Records on the group's topics it has not committed yet (for the lag metric)."""
        return await self._log.lag(self._group, self._logical_topics)

    async def close(self) -> None:
        consumer, self._consumer = self._consumer, None
        self._idle.set()  # nothing in hand will be committed now: let a rebalance proceed
        if consumer is not None:
            # Stopping leaves the group at once (no wait for a session timeout); bounded, as a
            # broker that is away must not hold up a shutdown.
            with contextlib.suppress(KafkaError, TimeoutError):
                await asyncio.wait_for(consumer.stop(), self._drain_timeout)


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, subscription: KafkaSubscription) -> None:
        self._subscription = subscription

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._subscription._revoked(set(revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        return None
