"""Deliver history again: re-publish what Kafka holds, or send a consumer group back to the
start, and take the services' state before and after to show it did not change.

Only an installation's own topics are touched (its prefix); consumer groups are named by
service, so a group is reset only while its service is stopped, as an operator would.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import OffsetAndMetadata
from sqlalchemy import MetaData, func, select
from sqlalchemy.ext.asyncio import create_async_engine

from services.escalation.store import metadata as escalation_tables
from services.intake.store import metadata as intake_tables
from services.notify.store import deliveries
from services.notify.store import metadata as notify_tables
from services.routing.store import metadata as routing_tables
from tests.faults.checker import ServiceDatabases
from yijian.bus.kafka import KafkaEventLog
from yijian.bus.kafka.records import decode
from yijian.contracts import Envelope
from yijian.contracts.events import TOPIC_CASES, TOPIC_DEADLINES, TOPIC_INTAKE

TOPICS = (TOPIC_INTAKE, TOPIC_CASES, TOPIC_DEADLINES)
# Each service's consumer group and what it reads (services/*/app.py).
GROUPS: Mapping[str, tuple[str, Sequence[str]]] = {
    "intake": ("intake.status", (TOPIC_CASES, TOPIC_DEADLINES)),
    "routing": ("routing", (TOPIC_INTAKE, TOPIC_DEADLINES)),
    "escalation": ("escalation", (TOPIC_CASES,)),
    "notify": ("notify", (TOPIC_INTAKE, TOPIC_CASES)),
}
# The tables that events write, per service: what a replay must leave as it was. (Sign-ins,
# the audit log and the abuse counters are written by requests, not by events.)
EVENT_STATE: Mapping[str, tuple[MetaData, Sequence[str]]] = {
    "intake": (intake_tables, ("complaints", "complaint_views", "timeline", "processed_events")),
    "routing": (routing_tables, ("cases", "case_actions", "level_stints", "processed_events")),
    "escalation": (escalation_tables, ("deadlines", "complaint_clocks", "processed_events")),
    "notify": (notify_tables, ("citizen_subscriptions", "deliveries", "processed_events")),
}

State = dict[str, list[tuple[object, ...]]]


@dataclass(frozen=True)
class Installation:
    """One production set-up's Kafka topics (by prefix) and databases."""

    bootstrap: str
    prefix: str
    databases: ServiceDatabases

    def event_log(self) -> KafkaEventLog:
        return KafkaEventLog(self.bootstrap, client_id="fault-test", topic_prefix=self.prefix)

    async def recorded(self) -> list[tuple[str, Envelope]]:
        """Every event on the installation's topics, oldest first within each partition."""
        partitions = await self.partitions(TOPICS)
        reader = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False)
        await reader.start()
        try:
            reader.assign(partitions)
            await reader.seek_to_beginning(*partitions)
            ends = await reader.end_offsets(partitions)
            events: list[tuple[str, Envelope]] = []
            while [p for p in partitions if await reader.position(p) < ends[p]]:
                batches = await reader.getmany(timeout_ms=1000)
                for partition, records in batches.items():
                    topic = partition.topic.removeprefix(self.prefix)
                    events += [(topic, decode(record.value)) for record in records]
            return events
        finally:
            await reader.stop()

    async def republish(self, events: Sequence[tuple[str, Envelope]]) -> None:
        """Publish ``events`` again, as they are (same ids), in the order given."""
        log = self.event_log()
        try:
            await log.publish(events)
        finally:
            await log.close()

    async def partitions(self, topics: Sequence[str]) -> list[TopicPartition]:
        """Every partition of these topics (as the services name them) in Kafka."""
        log = self.event_log()
        try:
            found = await log.partitions([self.prefix + topic for topic in topics])
        finally:
            await log.close()
        assert found, f"no partitions for {topics} under {self.prefix!r}"
        return found

    async def rewind(self, service: str) -> None:
        """Send ``service``'s consumer group back to the first offset of each partition.

        Only while the service is stopped: a group with members refuses a commit from outside.
        """
        group, topics = GROUPS[service]
        partitions = await self.partitions(topics)
        member = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, group_id=group, enable_auto_commit=False
        )
        await member.start()
        try:
            member.assign(partitions)
            starts = await member.beginning_offsets(partitions)
            await member.commit({p: OffsetAndMetadata(starts[p], "") for p in partitions})
        finally:
            await member.stop()

    async def lag(self) -> int:
        """Records some group has yet to consume, over every group."""
        log = self.event_log()
        try:
            return sum([await log.lag(group, topics) for group, topics in GROUPS.values()])
        finally:
            await log.close()

    async def members(self, group: str) -> int:
        """How many consumers the broker counts in ``group`` now."""
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await admin.start()
        try:
            answers = await admin.describe_consumer_groups([group])
        finally:
            await admin.close()
        return sum(
            len(described["members"])
            for answer in answers
            for described in answer.to_object()["groups"]
        )

    async def quiet(self) -> bool:
        """Nothing in flight: outboxes empty, every group caught up, no message unsent."""
        for service in GROUPS:
            metadata, _ = EVENT_STATE[service]
            outbox = metadata.tables["outbox"]
            if await _count(self._url(service), select(func.count()).select_from(outbox)):
                return False
        unsent = select(func.count()).where(deliveries.c.status == "pending")
        if await _count(self.databases.notify, unsent):
            return False
        return await self.lag() == 0

    async def state(self) -> dict[str, State]:
        """Every row of every table events write, per service, in primary-key order."""
        taken: dict[str, State] = {}
        for service, (metadata, names) in EVENT_STATE.items():
            engine = create_async_engine(self._url(service))
            try:
                async with engine.connect() as connection:
                    tables: State = {}
                    for name in names:
                        table = metadata.tables[name]
                        query = select(table).order_by(*table.primary_key.columns)
                        tables[name] = [tuple(row) for row in await connection.execute(query)]
                    taken[service] = tables
            finally:
                await engine.dispose()
        return taken

    def _url(self, service: str) -> str:
        url: str = getattr(self.databases, service)
        return url


async def _count(url: str, query: object) -> int:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            return int(await connection.scalar(query) or 0)  # type: ignore[call-overload]
    finally:
        await engine.dispose()


def differences(before: dict[str, State], after: dict[str, State]) -> list[str]:
    """Which tables changed, with their row counts, for an assertion's message."""
    changed = []
    for service, tables in before.items():
        for name, rows in tables.items():
            if after[service][name] != rows:
                changed.append(f"{service}.{name}: {len(rows)} rows → {len(after[service][name])}")
    return changed
