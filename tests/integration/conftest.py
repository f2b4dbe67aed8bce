"""Real Kafka and real PostgreSQL for the integration tests, started once per test session.

Both come from the scripts developers use (deploy/local/kafka.sh, deploy/local/postgres.sh),
in temporary folders on free loopback ports, and are stopped when the session ends. A missing
prerequisite fails the tests with the script's message: CI installs them
(deploy/local/prerequisites.sh), so a silent skip would hide a broken pipeline.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

ROOT = Path(__file__).resolve().parents[2]
KAFKA_SH = ROOT / "deploy" / "local" / "kafka.sh"
POSTGRES_SH = ROOT / "deploy" / "local" / "postgres.sh"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def run_script(what: str, command: list[str], env: dict[str, str], timeout: float = 300) -> str:
    """Run a deploy/local script; fail the test session, with its words, if it fails."""
    try:
        done = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as expired:
        said = expired.stderr.decode() if isinstance(expired.stderr, bytes) else expired.stderr
        pytest.fail(f"{what}: {' '.join(command)} took more than {timeout:g}s: {said}")
    if done.returncode != 0:
        pytest.fail(f"{what} failed (exit {done.returncode}):\n{done.stderr}{done.stdout}")
    return done.stdout.strip()


@dataclass
class LocalKafka:
    """The session's broker; ``restart`` stops and starts it on the same port and data."""

    bootstrap: str
    directory: Path
    env: dict[str, str]

    def start(self) -> None:
        self.bootstrap = run_script("starting Kafka", [str(KAFKA_SH), "start"], self.env)

    def stop(self) -> None:
        run_script("stopping Kafka", [str(KAFKA_SH), "stop"], self.env)

    def restart(self) -> None:
        self.stop()
        self.start()


@pytest.fixture(scope="session")
def local_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKafka]:
    directory = tmp_path_factory.mktemp("kafka")
    port = free_port()
    env = {
        **os.environ,
        "KAFKA_DIR": str(directory),
        "KAFKA_PORT": str(port),
        "KAFKA_CONTROLLER_PORT": str(free_port()),
        "KAFKA_HEAP_OPTS": "-Xms128m -Xmx384m",
        "KAFKA_STOP_WITH_PID": str(os.getpid()),  # should this session be killed
    }
    kafka = LocalKafka(f"127.0.0.1:{port}", directory, env)
    kafka.start()
    try:
        # Through the operator's command, so the catalog and the CLI are exercised too.
        run_script(
            "creating the topics",
            [
                str(ROOT / ".venv" / "bin" / "yijian"),
                "kafka",
                "apply-topics",
                "--profile",
                "local",
                "--bootstrap",
                kafka.bootstrap,
            ],
            env,
            timeout=120,
        )
        yield kafka
    finally:
        kafka.stop()


@pytest.fixture(scope="session")
def kafka_bootstrap(local_kafka: LocalKafka) -> str:
    """host:port of a running single-node Kafka holding the catalog's topics (local profile)."""
    return local_kafka.bootstrap


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """``postgresql+asyncpg://USER@127.0.0.1:PORT/`` of a throwaway cluster: add a database name."""
    # Not under pytest's own temporary folder: that is private to this user, and as root the
    # server runs as an unprivileged account that must reach its folder.
    directory = Path(tempfile.mkdtemp(prefix="yijian-pg-"))
    directory.chmod(0o755)
    env = {
        **os.environ,
        "PG_DIR": str(directory),
        "PG_PORT": str(free_port()),
        "PG_STOP_MODE": "immediate",  # no shutdown checkpoint: the cluster is deleted next
        "PG_STOP_WITH_PID": str(os.getpid()),  # should this session be killed
    }
    url = run_script("starting PostgreSQL", [str(POSTGRES_SH), "start"], env, timeout=120)
    try:
        yield url
    finally:
        run_script("stopping PostgreSQL", [str(POSTGRES_SH), "stop"], env, timeout=120)
        shutil.rmtree(directory, ignore_errors=True)


NewDatabase = Callable[[], Awaitable[str]]


@pytest.fixture
def new_postgres_database(postgres_url: str) -> NewDatabase:
    """Creates an empty database on the session's cluster and returns its URL."""

    async def create() -> str:
        name = f"test_{uuid.uuid4().hex[:12]}"
        # CREATE DATABASE cannot run inside a transaction.
        engine = create_async_engine(postgres_url + "postgres", isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as connection:
                await connection.execute(text(f'CREATE DATABASE "{name}"'))
        finally:
            await engine.dispose()
        return postgres_url + name

    return create
