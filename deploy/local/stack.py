"""Real PostgreSQL, Kafka and service processes on loopback, from the deploy/local scripts.

The integration tests and the benchmarks start the same throwaway servers the same way: the
shell scripts developers use (``postgres.sh``, ``kafka.sh``) in temporary folders on free
ports, and ``yijian serve NAME`` for each service. Nothing here knows about pytest: a script
that fails raises ``ScriptFailed`` with its own words, and the caller decides what that means.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

ROOT = Path(__file__).resolve().parents[2]
KAFKA_SH = ROOT / "deploy" / "local" / "kafka.sh"
POSTGRES_SH = ROOT / "deploy" / "local" / "postgres.sh"
YIJIAN = ROOT / ".venv" / "bin" / "yijian"
SERVICES = ("intake", "routing", "escalation", "notify")
T = TypeVar("T")


class ScriptFailed(RuntimeError):
    """A deploy/local script exited non-zero or overran its time; the message is its output."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def run_script(what: str, command: list[str], env: Mapping[str, str], timeout: float = 300) -> str:
    """Run a script to completion and return its stdout; raise ScriptFailed, with its words."""
    try:
        done = subprocess.run(
            command, env=dict(env), capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as expired:
        said = expired.stderr.decode() if isinstance(expired.stderr, bytes) else expired.stderr
        raise ScriptFailed(
            f"{what}: {' '.join(command)} took more than {timeout:g}s: {said}"
        ) from expired
    if done.returncode != 0:
        raise ScriptFailed(f"{what} failed (exit {done.returncode}):\n{done.stderr}{done.stdout}")
    return done.stdout.strip()


@dataclass
class LocalKafka:
    """A single-node broker; ``restart`` stops and starts it on the same port and data."""

    bootstrap: str
    directory: Path
    env: dict[str, str]

    @classmethod
    def in_folder(cls, directory: Path, *, heap: str = "-Xms128m -Xmx384m") -> LocalKafka:
        """A broker (not started yet) keeping its data in ``directory``.

        It stops by itself should this process die without stopping it.
        """
        port = free_port()
        env = {
            **os.environ,
            "KAFKA_DIR": str(directory),
            "KAFKA_PORT": str(port),
            "KAFKA_CONTROLLER_PORT": str(free_port()),
            "KAFKA_HEAP_OPTS": heap,
            "KAFKA_STOP_WITH_PID": str(os.getpid()),
        }
        return cls(f"127.0.0.1:{port}", directory, env)

    def start(self) -> None:
        self.bootstrap = run_script("starting Kafka", [str(KAFKA_SH), "start"], self.env)

    def stop(self) -> None:
        run_script("stopping Kafka", [str(KAFKA_SH), "stop"], self.env)

    def restart(self) -> None:
        self.stop()
        self.start()

    def apply_topics(self, env: Mapping[str, str] | None = None) -> None:
        """Create the catalog's topics (local profile) through the operator's command.

        ``env`` may set ``YIJIAN_KAFKA_TOPIC_PREFIX`` for a set of topics of one's own.
        """
        command = [str(YIJIAN), "kafka", "apply-topics", "--profile", "local"]
        command += ["--bootstrap", self.bootstrap]
        run_script("creating the topics", command, env or self.env, timeout=120)


@dataclass
class LocalPostgres:
    """A throwaway cluster; ``url`` is ``postgresql+asyncpg://USER@127.0.0.1:PORT/``."""

    url: str
    directory: Path
    env: dict[str, str]

    @classmethod
    def start(cls) -> LocalPostgres:
        # Not under a private temporary folder: as root the server runs as an unprivileged
        # account that must reach its folder.
        directory = Path(tempfile.mkdtemp(prefix="yijian-pg-"))
        directory.chmod(0o755)
        env = {
            **os.environ,
            "PG_DIR": str(directory),
            "PG_PORT": str(free_port()),
            "PG_STOP_MODE": "immediate",  # no shutdown checkpoint: the cluster is deleted next
            "PG_STOP_WITH_PID": str(os.getpid()),  # should this process be killed
        }
        try:
            url = run_script("starting PostgreSQL", [str(POSTGRES_SH), "start"], env, timeout=120)
        except ScriptFailed:
            shutil.rmtree(directory, ignore_errors=True)
            raise
        return cls(url, directory, env)

    def stop(self) -> None:
        try:
            run_script("stopping PostgreSQL", [str(POSTGRES_SH), "stop"], self.env, timeout=120)
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)

    async def new_database(self, prefix: str = "test") -> str:
        """Create an empty database and return its URL."""
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        # CREATE DATABASE cannot run inside a transaction.
        engine = create_async_engine(self.url + "postgres", isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as connection:
                await connection.execute(text(f'CREATE DATABASE "{name}"'))
        finally:
            await engine.dispose()
        return self.url + name


async def eventually(
    check: Callable[[], Awaitable[T | None]], what: str, timeout: float = 60.0
) -> T:
    """Poll until ``check`` returns something truthy: waiting for processes, bounded."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = await check()
        if result:
            return result
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        await asyncio.sleep(0.1)


@dataclass
class ServiceProcesses:
    """Services as ``yijian serve NAME`` processes, each logging to ``logs/NAME.log``."""

    env: dict[str, str]
    logs: Path
    ports: dict[str, int] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    def start(self, service: str) -> None:
        port = self.ports.setdefault(service, free_port())
        log = (self.logs / f"{service}.log").open("ab")
        self.processes[service] = subprocess.Popen(
            [str(YIJIAN), "serve", service, "--port", str(port)],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def kill(self, service: str) -> None:
        process = self.processes.pop(service)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)

    def stop_all(self) -> None:
        for process in self.processes.values():
            process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        self.processes.clear()

    async def wait_ready(self, client: httpx.AsyncClient, service: str) -> None:
        async def ready() -> bool:
            if self.processes[service].poll() is not None:
                log = (self.logs / f"{service}.log").read_text(errors="replace")[-3000:]
                raise AssertionError(f"{service} exited:\n{log}")
            try:
                answer = await client.get(f"{self.url(service)}/readyz", timeout=2)
            except httpx.TransportError:
                return False
            return answer.status_code == 200

        await eventually(ready, f"{service} to be ready", timeout=90)


def production_env(
    *,
    bootstrap: str,
    databases: Mapping[str, str],
    data_dir: Path,
    ports: Mapping[str, int],
    topic_prefix: str,
    clock_file: Path | None = None,
    **extra: str,
) -> dict[str, str]:
    """The environment of the production shape: Kafka, one database and port per service."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("YIJIAN_")}
    env.update(
        {
            "YIJIAN_BUS": "kafka",
            "YIJIAN_KAFKA_BOOTSTRAP": bootstrap,
            "YIJIAN_KAFKA_TOPIC_PREFIX": topic_prefix,
            "YIJIAN_KAFKA_TOPIC_PROFILE": "local",
            "YIJIAN_DATA_DIR": str(data_dir),
            "YIJIAN_AUTH_SECRET": "production-test-secret-of-enough-length",
            "YIJIAN_INTERNAL_TOKEN": "production-test-internal-token",
            "YIJIAN_LOG_FORMAT": "json",
            "YIJIAN_CONSUMER_MAX_ATTEMPTS": "5",
        }
    )
    if clock_file is not None:
        env["YIJIAN_CLOCK_FILE"] = str(clock_file)
    for service, url in databases.items():
        env[f"YIJIAN_{service.upper()}_DATABASE_URL"] = url
    for service, port in ports.items():
        env[f"YIJIAN_{service.upper()}_URL"] = f"http://127.0.0.1:{port}"
    env.update(extra)
    return env
