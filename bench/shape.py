"""The production shape for a benchmark: four ``yijian serve`` processes (not yet started),
each with its own PostgreSQL database, on this run's Kafka under the suite's own topics."""

from __future__ import annotations

from bench.context import Bench
from deploy.local.stack import SERVICES, ServiceProcesses, free_port, production_env


async def production_shape(
    bench: Bench, suite: str, **extra: str
) -> tuple[ServiceProcesses, dict[str, str]]:
    """The processes and each service's database URL; ``extra`` adds YIJIAN_ settings."""
    postgres = await bench.postgres()
    kafka = await bench.kafka()
    prefix = await bench.topics(suite)
    databases = {s: await postgres.new_database(f"{suite}_{s}") for s in SERVICES}
    ports = {service: free_port() for service in SERVICES}
    env = production_env(
        bootstrap=kafka.bootstrap,
        databases=databases,
        data_dir=bench.folder(f"{suite}-data"),
        ports=ports,
        topic_prefix=prefix,
    )
    env.update(extra)
    return ServiceProcesses(env=env, logs=bench.folder(f"{suite}-logs"), ports=ports), databases
