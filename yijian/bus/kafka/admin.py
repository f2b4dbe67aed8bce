"""Makes a Kafka cluster hold the topics of the catalog: ``yijian kafka apply-topics``.

Idempotent: a topic that is missing is created; one with fewer partitions than the catalog
gets more; settings that differ are set. What cannot be done safely is reported and left
alone: fewer partitions (Kafka cannot remove them, and keys would move) and a different
replication factor (that is a partition reassignment, an operator's decision).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import for_code

from yijian.bus.topics import TopicCatalog, TopicSpec

_TOPIC_ALREADY_EXISTS = 36


class TopicAdmin:
    """A short-lived admin connection; use ``async with TopicAdmin(...) as admin``."""

    def __init__(
        self,
        bootstrap: str,
        *,
        client_id: str = "yijian-admin",
        request_timeout_ms: int = 30_000,
        prefix: str = "",
    ) -> None:
        self._client = AIOKafkaAdminClient(
            bootstrap_servers=bootstrap,
            client_id=client_id,
            request_timeout_ms=request_timeout_ms,
        )
        self._prefix = prefix

    async def __aenter__(self) -> TopicAdmin:
        await self._client.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self._client.close()

    async def apply(self, catalog: TopicCatalog) -> list[str]:
        """Bring the cluster to the catalog; returns one line per change or refusal."""
        existing = await self._describe([self._prefix + spec.name for spec in catalog.topics])
        report: list[str] = []
        missing = [spec for spec in catalog.topics if self._prefix + spec.name not in existing]
        if missing:
            raced = await self._create(missing)
            if raced:
                # Created since we looked (by hand, or by another apply-topics), or our look
                # came before the broker's metadata had caught up: bring them up to date below.
                existing |= await self._describe_when_listed(raced)
                missing = [spec for spec in missing if self._prefix + spec.name not in raced]
            await self._await_ready({self._prefix + spec.name: spec.partitions for spec in missing})
            report += [
                f"created {self._prefix}{spec.name}: {spec.partitions} partitions, "
                f"{spec.replication_factor} replicas, min.insync.replicas "
                f"{spec.min_insync_replicas}"
                for spec in missing
            ]
        for spec in catalog.topics:
            name = self._prefix + spec.name
            if name in existing:
                report += await self._update(spec, name, existing[name])
        return report

    async def delete(self, names: Sequence[str]) -> None:
        await self._client.delete_topics([self._prefix + name for name in names])

    async def _describe(self, names: list[str]) -> dict[str, list[dict[str, Any]]]:
        """Partitions of each topic that exists, by name."""
        described = await self._client.describe_topics(names)
        return {
            topic["topic"]: topic["partitions"]
            for topic in described
            if topic["error_code"] == 0 and topic["topic"] in names
        }

    async def _await_ready(self, expected: dict[str, int], timeout: float = 30.0) -> None:
        """Return once each topic shows its expected partitions, each with a leader: the
        broker's metadata trails the controller by a moment, and a write or a second apply in
        that moment would see the old state."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            described = await self._describe(list(expected))
            if all(
                len(described.get(name, [])) >= count
                and all(partition["leader"] >= 0 for partition in described[name])
                for name, count in expected.items()
            ):
                return
            if loop.time() > deadline:
                raise TimeoutError(f"topics not ready after {timeout:g}s: {sorted(expected)}")
            await asyncio.sleep(0.1)

    async def _create(self, specs: list[TopicSpec]) -> set[str]:
        """Create the topics; returns the names the broker says exist already."""
        response = await self._client.create_topics(
            [
                NewTopic(
                    self._prefix + spec.name,
                    spec.partitions,
                    spec.replication_factor,
                    topic_configs=spec.configs,
                )
                for spec in specs
            ]
        )
        already: set[str] = set()
        for topic, code, message in response.topic_errors:
            if code == _TOPIC_ALREADY_EXISTS:
                already.add(topic)
            elif code:
                raise for_code(code)(f"cannot create topic {topic}: {message}")
        return already

    async def _describe_when_listed(
        self, names: set[str], timeout: float = 30.0
    ) -> dict[str, list[dict[str, Any]]]:
        """Describe topics the controller knows, once this broker's metadata lists them."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            described = await self._describe(sorted(names))
            if names <= described.keys():
                return described
            if loop.time() > deadline:
                raise TimeoutError(f"topics not described after {timeout:g}s: {sorted(names)}")
            await asyncio.sleep(0.1)

    async def _update(
        self, spec: TopicSpec, name: str, partitions: list[dict[str, Any]]
    ) -> list[str]:
        report: list[str] = []
        if len(partitions) < spec.partitions:
            await self._client.create_partitions({name: NewPartitions(spec.partitions)})
            await self._await_ready({name: spec.partitions})
            report.append(f"{name}: partitions {len(partitions)} → {spec.partitions}")
        elif len(partitions) > spec.partitions:
            report.append(
                f"{name}: has {len(partitions)} partitions, the catalog says {spec.partitions}; "
                "left as is (Kafka cannot remove partitions)"
            )
        replicas = len(partitions[0]["replicas"]) if partitions else 0
        if replicas != spec.replication_factor:
            report.append(
                f"{name}: has {replicas} replicas, the catalog says {spec.replication_factor}; "
                "left as is (reassign its partitions with kafka-reassign-partitions)"
            )
        current = await self._configs(name)
        wanted = spec.configs
        if spec.min_insync_replicas > replicas:
            # More in-sync replicas than exist would refuse every acks=all write.
            wanted.pop("min.insync.replicas")
            report.append(
                f"{name}: min.insync.replicas {spec.min_insync_replicas} not set: the topic has "
                f"only {replicas} replicas (wrong --profile?)"
            )
            if "min.insync.replicas" in current:
                wanted["min.insync.replicas"] = current["min.insync.replicas"]
        changed = {key: value for key, value in wanted.items() if current.get(key) != value}
        if changed:
            # AlterConfigs replaces the topic's whole set of overrides: send all we own.
            response = await self._client.alter_configs(
                [ConfigResource(ConfigResourceType.TOPIC, name, configs=wanted)]
            )
            for result in response:
                for code, message, _, resource in result.resources:
                    if code:
                        raise for_code(code)(f"cannot configure {resource}: {message}")
            report += [
                f"{name}: {key} {current.get(key)} → {value}" for key, value in changed.items()
            ]
        return report

    async def _configs(self, name: str) -> dict[str, str]:
        responses = await self._client.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, name)]
        )
        values: dict[str, str] = {}
        for response in responses:
            for resource in response.to_object()["resources"]:
                for entry in resource["config_entries"]:
                    values[entry["config_names"]] = entry["config_value"]
        return values
