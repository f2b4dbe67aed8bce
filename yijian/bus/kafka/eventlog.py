"""The production event log: Apache Kafka through aiokafka, behind the ``EventLog`` protocol.

Services cannot tell it from the embedded log: ``publish`` returns once Kafka confirmed every
record (acks=all, idempotent producer), a complaint's events share a partition (key =
complaint id), each consumer group commits its own offsets by hand after its transaction, and
a record that keeps failing goes to ``<topic>.dlq`` with the reason in its headers.

``topic_prefix`` puts every topic under a prefix (``staging.yijian.cases.v1``), so that two
installations, or two tests, can share a cluster; services keep using the plain names.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from yijian.bus.kafka import dead_letters
from yijian.bus.kafka.producer import ConfirmedProducer
from yijian.bus.kafka.records import event_record
from yijian.bus.kafka.subscription import KafkaSubscription
from yijian.bus.protocol import DeadLetter, StoredEnvelope
from yijian.bus.topics import TopicCatalog, dead_letter_topic, load_catalog
from yijian.contracts import Envelope
from yijian.settings import Settings


class KafkaEventLog:
    def __init__(
        self,
        bootstrap: str,
        *,
        client_id: str = "yijian",
        topic_prefix: str = "",
        request_timeout_ms: int = 30_000,
        delivery_timeout_ms: int = 60_000,
        session_timeout_ms: int = 10_000,
        instance_id: str | None = None,
        catalog: TopicCatalog | None = None,
        catalog_path: Path | None = None,
        catalog_profile: str = "production",
    ) -> None:
        self.bootstrap = bootstrap
        self.client_id = client_id
        self.prefix = topic_prefix
        self._catalog = catalog
        self._catalog_source = (catalog_path, catalog_profile)
        self.request_timeout_ms = request_timeout_ms
        self._session_timeout_ms = session_timeout_ms
        self._instance_id = instance_id
        self.producer = ConfirmedProducer(self._new_producer, delivery_timeout_ms / 1000)
        self._inspector: AIOKafkaConsumer | None = None
        self._admin: AIOKafkaAdminClient | None = None

    @classmethod
    def from_settings(cls, settings: Settings, *, role: str = "yijian") -> KafkaEventLog:
        return cls(
            settings.kafka_bootstrap,
            client_id=f"{settings.kafka_client_id}-{role}",
            topic_prefix=settings.kafka_topic_prefix,
            request_timeout_ms=settings.kafka_request_timeout_ms,
            delivery_timeout_ms=settings.kafka_delivery_timeout_ms,
            session_timeout_ms=settings.kafka_session_timeout_ms,
            instance_id=settings.kafka_instance_id,
            catalog_path=settings.kafka_topic_catalog,
            catalog_profile=settings.kafka_topic_profile,
        )

    @property
    def catalog(self) -> TopicCatalog:
        """The topic catalog, read when first needed: only the dead-letter tools need it, so
        a service runs even where the catalog file was not shipped."""
        if self._catalog is None:
            self._catalog = load_catalog(*self._catalog_source)
        return self._catalog

    def physical(self, topic: str) -> str:
        """The name in Kafka of a topic the services call ``topic``."""
        return self.prefix + topic

    def logical(self, topic: str) -> str:
        return topic.removeprefix(self.prefix)

    def dead_letter_topic(self, physical_topic: str) -> str:
        return dead_letter_topic(physical_topic)

    def _new_producer(self) -> AIOKafkaProducer:
        return AIOKafkaProducer(
            bootstrap_servers=self.bootstrap,
            client_id=f"{self.client_id}-producer",
            acks="all",
            enable_idempotence=True,
            request_timeout_ms=self.request_timeout_ms,
            retry_backoff_ms=200,
            # ConfirmedProducer fills and closes the batches itself, so they never linger. A
            # relay batch (500 events, ~350 KB) then goes in one batch per partition rather
            # than in 16 KB ones, each a round trip (the broker takes up to 1 MB).
            max_batch_size=256 * 1024,
        )

    def _new_consumer(self, group: str | None) -> AIOKafkaConsumer:
        session = self._session_timeout_ms
        return AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            client_id=f"{self.client_id}-{group or 'reader'}",
            group_id=group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            request_timeout_ms=self.request_timeout_ms,
            session_timeout_ms=session,
            heartbeat_interval_ms=max(100, session // 5),
            # Static membership (KIP-345), one member id per replica and group.
            group_instance_id=f"{self._instance_id}-{group}"
            if self._instance_id and group
            else None,
            retry_backoff_ms=200,
            # New partitions (apply-topics raised a count) are noticed within a minute.
            metadata_max_age_ms=60_000,
        )

    async def publish(self, envelopes: Sequence[tuple[str, Envelope | StoredEnvelope]]) -> None:
        await self.producer.send(
            [event_record(self.physical(topic), envelope) for topic, envelope in envelopes]
        )

    def subscribe(self, group: str, topics: Sequence[str]) -> KafkaSubscription:
        return KafkaSubscription(
            self,
            group,
            topics,
            lambda: self._new_consumer(group),
            drain_timeout=self.request_timeout_ms / 1000,
        )

    async def dead_letters(
        self, group: str | None = None, include_replayed: bool = False
    ) -> list[DeadLetter]:
        """What consumer groups gave up on, oldest first per dead-letter topic."""
        found = await dead_letters.read(self, lambda: self._new_consumer(None))
        return [
            letter.dead_letter
            for letter in found
            if (group is None or letter.dead_letter.group == group)
            and (include_replayed or not letter.replayed)
        ]

    async def replay_dead_letter(self, dead_letter_id: int) -> bool:
        """Put a dead letter back on its topic, once; False if there is no such unreplayed one."""
        return await dead_letters.replay(self, lambda: self._new_consumer(None), dead_letter_id)

    async def lag(self, group: str, topics: Sequence[str]) -> int:
        """Records on ``topics`` that ``group`` has not committed yet."""
        partitions = await self.partitions([self.physical(topic) for topic in topics])
        if not partitions:
            return 0
        ends = await (await self.inspector()).end_offsets(partitions)
        admin = await self._admin_client()
        committed = await admin.list_consumer_group_offsets(group, partitions=partitions)
        total = 0
        for partition in partitions:
            position = committed.get(partition)
            done = position.offset if position is not None and position.offset >= 0 else 0
            total += max(0, int(ends[partition]) - done)
        return total

    async def partitions(self, physical_topics: Sequence[str]) -> list[TopicPartition]:
        """Every partition of these topics (as named in Kafka) that exists now."""
        admin = await self._admin_client()
        described = await admin.describe_topics(list(physical_topics))
        return [
            TopicPartition(topic["topic"], partition["partition"])
            for topic in described
            if topic["error_code"] == 0
            for partition in sorted(topic["partitions"], key=lambda p: int(p["partition"]))
        ]

    async def inspector(self) -> AIOKafkaConsumer:
        """A consumer outside any group, for reading end offsets."""
        if self._inspector is None:
            inspector = self._new_consumer(None)
            await inspector.start()
            self._inspector = inspector
        return self._inspector

    async def _admin_client(self) -> AIOKafkaAdminClient:
        if self._admin is None:
            admin = AIOKafkaAdminClient(
                bootstrap_servers=self.bootstrap,
                client_id=f"{self.client_id}-admin",
                request_timeout_ms=self.request_timeout_ms,
            )
            await admin.start()
            self._admin = admin
        return self._admin

    async def close(self) -> None:
        await self.producer.close()
        inspector, self._inspector = self._inspector, None
        if inspector is not None:
            await inspector.stop()
        admin, self._admin = self._admin, None
        if admin is not None:
            await admin.close()
