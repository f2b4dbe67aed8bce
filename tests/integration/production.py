"""The production shape for tests: each service in its own process, on Kafka and PostgreSQL.

Time is shared through a clock file (``YIJIAN_CLOCK_FILE``) the test moves, so deadlines
come due without anyone waiting for them.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx

from tests.integration.conftest import ROOT, free_port

SERVICES = ("intake", "routing", "escalation", "notify")
T = TypeVar("T")


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
class Production:
    env: dict[str, str]
    logs: Path
    clock_file: Path
    now: datetime
    databases: dict[str, str] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    def set_clock(self, instant: datetime) -> None:
        self.now = instant
        temporary = self.clock_file.with_suffix(".tmp")
        temporary.write_text(instant.isoformat(), encoding="utf-8")
        temporary.replace(self.clock_file)  # atomic: a reader never sees half a timestamp

    def advance(self, span: timedelta) -> None:
        self.set_clock(self.now + span)

    def start(self, service: str) -> None:
        port = self.ports.setdefault(service, free_port())
        log = (self.logs / f"{service}.log").open("ab")
        self.processes[service] = subprocess.Popen(
            [str(ROOT / ".venv" / "bin" / "yijian"), "serve", service, "--port", str(port)],
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
    databases: dict[str, str],
    data_dir: Path,
    clock_file: Path,
    ports: dict[str, int],
    topic_prefix: str,
    **extra: str,
) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("YIJIAN_")}
    env.update(
        {
            "YIJIAN_BUS": "kafka",
            "YIJIAN_KAFKA_BOOTSTRAP": bootstrap,
            "YIJIAN_KAFKA_TOPIC_PREFIX": topic_prefix,
            "YIJIAN_KAFKA_TOPIC_PROFILE": "local",
            "YIJIAN_DATA_DIR": str(data_dir),
            "YIJIAN_CLOCK_FILE": str(clock_file),
            "YIJIAN_AUTH_SECRET": "production-test-secret-of-enough-length",
            "YIJIAN_INTERNAL_TOKEN": "production-test-internal-token",
            "YIJIAN_LOG_FORMAT": "json",
            "YIJIAN_CONSUMER_MAX_ATTEMPTS": "5",
        }
    )
    for service, url in databases.items():
        env[f"YIJIAN_{service.upper()}_DATABASE_URL"] = url
    for service, port in ports.items():
        env[f"YIJIAN_{service.upper()}_URL"] = f"http://127.0.0.1:{port}"
    env.update(extra)
    return env


def json_of(answer: httpx.Response) -> Any:
    assert answer.status_code < 400, answer.text
    return answer.json()
