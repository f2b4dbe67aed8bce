"""A network partition: routing, in a network namespace of its own, is cut off from Kafka and
PostgreSQL (its veth link taken down) while citizens keep filing, then the link comes back.

Routing is the one to cut: the only writer of cases, a consumer that the broker must drop
from its group, a producer with events in hand, and a database client with transactions open
when the link goes. The rest of the system must not notice beyond a delay, and routing must
catch up by itself, without a restart.

Needs root and iproute2 (``ip netns``); skipped with the reason where they are missing.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import make_url

from deploy.local.stack import LocalKafka, LocalPostgres, ScriptFailed, free_port
from tests.faults.checker import settled
from tests.faults.citizens import Citizens
from tests.faults.history import Installation
from tests.faults.partition import Partition, TcpRelay, partitionable, unavailable
from tests.faults.probes import eventually, readiness, report, until
from tests.faults.production import FaultyProduction, production_on

pytestmark = pytest.mark.integration

CUT_OFF = "routing"


@pytest.fixture(scope="module")
def cut_off(
    tmp_path_factory: pytest.TempPathFactory, local_postgres: LocalPostgres
) -> Iterator[tuple[FaultyProduction, Partition]]:
    reason = unavailable()
    if reason is not None:
        pytest.skip(f"no network partition here: {reason}")
    folder: Path = tmp_path_factory.mktemp("partition")
    with partitionable() as partition:
        # A broker of our own, listening and advertising on the host's end of the link: the
        # session's broker advertises 127.0.0.1, which inside the namespace is nobody.
        kafka = LocalKafka.in_folder(folder / "kafka")
        kafka.env["KAFKA_HOST"] = partition.outside
        try:
            kafka.start()
        except ScriptFailed as failure:
            pytest.fail(str(failure))
        cluster = make_url(local_postgres.url)
        relay = TcpRelay((partition.outside, free_port()), (cluster.host or "", cluster.port or 0))
        relay.start()
        try:
            with production_on(
                folder,
                bootstrap=kafka.bootstrap,
                postgres=local_postgres,
                service_env={CUT_OFF: {"YIJIAN_HOST": partition.inside}},
                launcher={CUT_OFF: partition.launcher},
                hosts={CUT_OFF: partition.inside},
                database_via={CUT_OFF: f"{relay.listen[0]}:{relay.listen[1]}"},
            ) as system:
                yield system, partition
        finally:
            relay.stop()
            kafka.stop()


async def test_a_service_cut_off_from_kafka_and_postgres_catches_up_by_itself(
    cut_off: tuple[FaultyProduction, Partition],
) -> None:
    production, partition = cut_off
    installation = Installation(
        bootstrap=production.env["YIJIAN_KAFKA_BOOTSTRAP"],
        prefix=production.env["YIJIAN_KAFKA_TOPIC_PREFIX"],
        databases=production.service_databases,
    )
    citizens = Citizens(lambda: production.url("intake"))
    process = production.processes[CUT_OFF]
    citizens.start()
    async with httpx.AsyncClient(timeout=15) as client:
        try:
            await until(lambda: len(citizens.acknowledged) >= 10, "complaints before the cut")
            partition.cut()
            try:

                async def dropped() -> bool:
                    return await installation.members(CUT_OFF) == 0

                # Its heartbeats stop reaching the broker, which gives up on it after the
                # session timeout: the group is left empty.
                await eventually(dropped, "Kafka to drop routing from its group", timeout=90)
                during = len(citizens.acknowledged)
                await until(
                    lambda: len(citizens.acknowledged) >= during + 20,
                    "complaints acknowledged during the partition",
                )
                acknowledged_while_cut = len(citizens.acknowledged) - during
                status, _ = await readiness(client, production.url(CUT_OFF))
                assert status == 0, "routing answered across a cut link"
                for service in ("intake", "escalation", "notify"):
                    status, body = await readiness(client, production.url(service))
                    assert status == 200, (service, body)
            finally:
                partition.heal()
            await production.wait_ready(client, CUT_OFF)
            healed = len(citizens.acknowledged)
            await until(lambda: len(citizens.acknowledged) >= healed + 10, "filing after")
        finally:
            await citizens.stop()
    figures = await settled(production.service_databases, citizens.acknowledged, timeout=240)
    report(
        "routing cut off by a network partition",
        figures,
        acknowledged_during_the_partition=acknowledged_while_cut,
        failed_attempts=dict(citizens.refused),
    )
    assert process.poll() is None, "routing died instead of waiting for the network"
    assert production.processes[CUT_OFF] is process  # caught up without a restart
    assert not citizens.refused, citizens.refused
    assert figures.sound, figures.table()
