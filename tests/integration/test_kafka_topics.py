"""The topic catalog matches the event contracts, and applying it to Kafka is idempotent."""

from __future__ import annotations

import uuid
from dataclasses import replace

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from yijian.bus.kafka.admin import TopicAdmin
from yijian.bus.topics import CatalogError, TopicCatalog, load_catalog
from yijian.contracts.events import TOPIC_OF

pytestmark = pytest.mark.integration


def test_the_catalog_carries_exactly_the_events_of_the_contracts() -> None:
    catalog = load_catalog()
    assert catalog.topic_of() == TOPIC_OF
    every_topic = {topic.name for topic in catalog.topics}
    for topic in set(TOPIC_OF.values()):
        assert f"{topic}.dlq" in every_topic, f"{topic} has no dead-letter topic"


def test_production_keeps_three_replicas_and_local_one() -> None:
    for topic in load_catalog(profile="production").topics:
        assert (topic.replication_factor, topic.min_insync_replicas) == (3, 2), topic.name
    for topic in load_catalog(profile="local").topics:
        assert (topic.replication_factor, topic.min_insync_replicas) == (1, 1), topic.name
    with pytest.raises(CatalogError, match="unknown profile"):
        load_catalog(profile="staging")


async def describe(bootstrap: str, name: str) -> tuple[int, dict[str, str]]:
    """A topic's partition count and its settings, as the broker reports them."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        [topic] = await admin.describe_topics([name])
        [response] = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name)])
        entries = response.to_object()["resources"][0]["config_entries"]
        return len(topic["partitions"]), {e["config_names"]: e["config_value"] for e in entries}
    finally:
        await admin.close()


async def test_applying_the_catalog_creates_then_repairs_then_changes_nothing(
    kafka_bootstrap: str,
) -> None:
    prefix = f"apply-{uuid.uuid4().hex[:8]}."
    catalog = load_catalog(profile="local")
    cases = catalog.get("yijian.cases.v1")
    # Someone created the cases topic by hand: too few partitions, the wrong retention.
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(prefix + cases.name, 2, 1, topic_configs={"retention.ms": "60000"})]
        )
    finally:
        await admin.close()

    async with TopicAdmin(kafka_bootstrap, prefix=prefix) as topics:
        first = await topics.apply(catalog)
        assert sum(line.startswith("created") for line in first) == len(catalog.topics) - 1
        assert f"{prefix}{cases.name}: partitions 2 → {cases.partitions}" in first
        assert f"{prefix}{cases.name}: retention.ms 60000 → {cases.retention_ms}" in first
        assert await topics.apply(catalog) == []  # idempotent

        partitions, settings = await describe(kafka_bootstrap, prefix + cases.name)
        assert partitions == cases.partitions
        assert settings["retention.ms"] == str(cases.retention_ms)
        assert settings["min.insync.replicas"] == "1"
        assert settings["unclean.leader.election.enable"] == "false"

        # The catalog grows a topic's partitions later: apply raises them, never lowers them.
        grown = TopicCatalog(
            tuple(
                replace(topic, partitions=topic.partitions + 2) if topic is cases else topic
                for topic in catalog.topics
            )
        )
        assert await topics.apply(grown) == [
            f"{prefix}{cases.name}: partitions {cases.partitions} → {cases.partitions + 2}"
        ]
        shrunk = await topics.apply(catalog)
        assert len(shrunk) == 1
        assert "left as is" in shrunk[0]
        await topics.delete([topic.name for topic in catalog.topics])
