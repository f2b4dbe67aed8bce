"""Real Kafka and real PostgreSQL for the integration tests, started once per test session.

Both come from the scripts developers use (deploy/local/kafka.sh, deploy/local/postgres.sh,
driven by ``deploy.local.stack``, which the benchmarks share), in temporary folders on free
loopback ports, and are stopped when the session ends. A missing prerequisite fails the tests
with the script's message: CI installs them (deploy/local/prerequisites.sh), so a silent skip
would hide a broken pipeline.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator

import pytest

from deploy.local.stack import ROOT, LocalKafka, LocalPostgres, ScriptFailed, free_port

__all__ = ["ROOT", "LocalKafka", "NewDatabase", "free_port"]


@pytest.fixture(scope="session")
def local_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKafka]:
    kafka = LocalKafka.in_folder(tmp_path_factory.mktemp("kafka"))
    try:
        kafka.start()
    except ScriptFailed as failure:
        pytest.fail(str(failure))
    try:
        # Through the operator's command, so the catalog and the CLI are exercised too.
        kafka.apply_topics()
        yield kafka
    except ScriptFailed as failure:
        pytest.fail(str(failure))
    finally:
        kafka.stop()


@pytest.fixture(scope="session")
def kafka_bootstrap(local_kafka: LocalKafka) -> str:
    """host:port of a running single-node Kafka holding the catalog's topics (local profile)."""
    return local_kafka.bootstrap


@pytest.fixture(scope="session")
def local_postgres() -> Iterator[LocalPostgres]:
    try:
        cluster = LocalPostgres.start()
    except ScriptFailed as failure:
        pytest.fail(str(failure))
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def postgres_url(local_postgres: LocalPostgres) -> str:
    """``postgresql+asyncpg://USER@127.0.0.1:PORT/`` of a throwaway cluster: add a database name."""
    return local_postgres.url


NewDatabase = Callable[[], Awaitable[str]]


@pytest.fixture
def new_postgres_database(local_postgres: LocalPostgres) -> NewDatabase:
    """Creates an empty database on the session's cluster and returns its URL."""
    return local_postgres.new_database
