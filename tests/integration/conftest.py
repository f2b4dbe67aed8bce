"""Real Kafka and real PostgreSQL for the integration tests, started once per test session.

Both come from the scripts developers use (deploy/local/kafka.sh, deploy/local/postgres.sh,
driven by ``deploy.local.stack``, which the benchmarks share), in temporary folders on free
loopback ports, and are stopped when the session ends. A missing prerequisite fails the tests
with the script's message: CI installs them (deploy/local/prerequisites.sh), so a silent skip
would hide a broken pipeline.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from deploy.local.stack import ROOT, LocalKafka, LocalPostgres, ScriptFailed, free_port
from services.intake.store import metadata as intake_metadata
from yijian.db import create_engine, create_tables

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


@pytest.fixture(params=["postgresql", "sqlite"])
async def store_url(
    request: pytest.FixtureRequest, new_postgres_database: NewDatabase, tmp_path: Path
) -> str:
    """An empty database's URL, once on PostgreSQL and once on SQLite."""
    if request.param == "postgresql":
        return await new_postgres_database()
    return f"sqlite+aiosqlite:///{tmp_path}/store.db"


@pytest.fixture
async def intake_engine(store_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on intake's tables, once on PostgreSQL and once on SQLite."""
    engine = create_engine(store_url)
    await create_tables(engine, intake_metadata)
    yield engine
    await engine.dispose()
