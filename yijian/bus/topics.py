"""The Kafka topic catalog (``deploy/kafka/topics.toml``): what topics exist and how they are set.

The catalog is the one place that says how many partitions a topic has, how many replicas it
keeps and how long it keeps records; ``yijian kafka apply-topics`` makes a cluster match it.
A profile (``local``) overrides replication for a single-broker cluster.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

CATALOG = Path(__file__).resolve().parents[2] / "deploy" / "kafka" / "topics.toml"
DEAD_LETTER_SUFFIX = ".dlq"
PROFILES = ("production", "local")

_OVERRIDABLE = ("partitions", "replication_factor", "min_insync_replicas", "retention_ms")


class CatalogError(ValueError):
    """The catalog file is missing a field, has a wrong one, or names an unknown profile."""


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    replication_factor: int
    min_insync_replicas: int
    retention_ms: int
    events: tuple[str, ...] = ()
    dead_letters_of: str | None = None

    @property
    def configs(self) -> dict[str, str]:
        """The topic-level settings Kafka keeps for it, as the admin API wants them."""
        return {
            "min.insync.replicas": str(self.min_insync_replicas),
            "retention.ms": str(self.retention_ms),
            "cleanup.policy": "delete",
            # A replica that missed writes must never become leader: that would drop events.
            "unclean.leader.election.enable": "false",
        }


@dataclass(frozen=True)
class TopicCatalog:
    topics: tuple[TopicSpec, ...]

    def get(self, name: str) -> TopicSpec:
        for topic in self.topics:
            if topic.name == name:
                return topic
        raise KeyError(name)

    @property
    def event_topics(self) -> tuple[TopicSpec, ...]:
        return tuple(topic for topic in self.topics if topic.dead_letters_of is None)

    @property
    def dead_letter_topics(self) -> tuple[TopicSpec, ...]:
        return tuple(topic for topic in self.topics if topic.dead_letters_of is not None)

    def topic_of(self) -> dict[str, str]:
        """Event type → topic, as the catalog says (compare with contracts' TOPIC_OF)."""
        return {event: topic.name for topic in self.event_topics for event in topic.events}


def dead_letter_topic(topic: str) -> str:
    return topic + DEAD_LETTER_SUFFIX


def load_catalog(path: Path | None = None, profile: str = "production") -> TopicCatalog:
    path = path or CATALOG
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as missing:
        raise CatalogError(f"no topic catalog at {path}") from missing
    except tomllib.TOMLDecodeError as error:
        raise CatalogError(f"{path}: {error}") from error
    if profile not in PROFILES:
        raise CatalogError(f"unknown profile {profile!r}: choose {' or '.join(PROFILES)}")
    overrides: Mapping[str, Any] = {}
    if profile != "production":
        overrides = document.get("profiles", {}).get(profile, {})
        unknown = set(overrides) - set(_OVERRIDABLE)
        if unknown:
            raise CatalogError(f"profile {profile} overrides unknown fields {sorted(unknown)}")
    topics = tuple(
        replace(_topic(name, fields), **overrides)
        for name, fields in document.get("topics", {}).items()
    )
    catalog = TopicCatalog(topics)
    _check(catalog)
    return catalog


def _topic(name: str, fields: Mapping[str, Any]) -> TopicSpec:
    def number(field: str) -> int:
        value = fields.get(field)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise CatalogError(f"topic {name}: {field} must be a positive whole number")
        return value

    events = fields.get("events", [])
    if not isinstance(events, list) or not all(isinstance(event, str) for event in events):
        raise CatalogError(f"topic {name}: events must be a list of event types")
    dead_letters_of = fields.get("dead_letters_of")
    if dead_letters_of is not None and not isinstance(dead_letters_of, str):
        raise CatalogError(f"topic {name}: dead_letters_of must be a topic name")
    return TopicSpec(
        name=name,
        partitions=number("partitions"),
        replication_factor=number("replication_factor"),
        min_insync_replicas=number("min_insync_replicas"),
        retention_ms=number("retention_ms"),
        events=tuple(events),
        dead_letters_of=dead_letters_of,
    )


def _check(catalog: TopicCatalog) -> None:
    names = {topic.name for topic in catalog.topics}
    for topic in catalog.topics:
        if topic.min_insync_replicas > topic.replication_factor:
            raise CatalogError(
                f"topic {topic.name}: min_insync_replicas {topic.min_insync_replicas} is more "
                f"than its {topic.replication_factor} replicas: nothing could be written"
            )
        if topic.dead_letters_of is not None:
            if topic.name != dead_letter_topic(topic.dead_letters_of):
                raise CatalogError(f"topic {topic.name} must be named {topic.dead_letters_of}.dlq")
            if topic.dead_letters_of not in names:
                raise CatalogError(f"topic {topic.name}: {topic.dead_letters_of} is not listed")
            if topic.events:
                raise CatalogError(f"topic {topic.name}: a dead-letter topic lists no events")
            if topic.partitions > 99:
                raise CatalogError(f"topic {topic.name}: at most 99 partitions (dead-letter ids)")
    if len(catalog.dead_letter_topics) > 9:
        raise CatalogError("at most 9 dead-letter topics (their number is one digit of an id)")
