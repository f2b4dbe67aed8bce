"""Server processes under measurement: start, wait until ready, watch their memory, stop.

yijian's own processes are started the way an operator starts them (``yijian run``,
``yijian serve NAME``); the baseline app the same way through uvicorn. Each writes its output
to a log file beside the results, so a failed run can be read afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

from deploy.local.stack import ROOT, YIJIAN, eventually, free_port

MB = 1024 * 1024


@dataclass
class ServerProcess:
    name: str
    command: list[str]
    env: dict[str, str]
    logs: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @classmethod
    def baseline(cls, env: dict[str, str], logs: Path) -> ServerProcess:
        port = free_port()
        command = [sys.executable, "-m", "bench.baseline_app", "--port", str(port)]
        return cls("baseline", command, env, logs, port)

    @classmethod
    def embedded(cls, env: dict[str, str], logs: Path) -> ServerProcess:
        """``yijian run``: all four services in one process over SQLite."""
        port = free_port()
        return cls("embedded", [str(YIJIAN), "run"], {**env, "YIJIAN_PORT": str(port)}, logs, port)

    @classmethod
    def service(cls, name: str, env: dict[str, str], logs: Path) -> ServerProcess:
        """``yijian serve NAME`` alone, over SQLite and the embedded event log (the settings'
        defaults): the embedded mode's storage, one service to a process."""
        port = free_port()
        return cls(name, [str(YIJIAN), "serve", name, "--port", str(port)], env, logs, port)

    @property
    def pid(self) -> int:
        assert self.process is not None, f"{self.name} was not started"
        return self.process.pid

    def start(self) -> None:
        log = (self.logs / f"{self.name}.log").open("ab")
        self.process = subprocess.Popen(
            self.command, env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
        )

    async def wait_ready(self, timeout: float = 90) -> None:
        async with httpx.AsyncClient(timeout=2) as client:

            async def ready() -> bool:
                assert self.process is not None
                if self.process.poll() is not None:
                    said = (self.logs / f"{self.name}.log").read_text(errors="replace")[-3000:]
                    raise RuntimeError(f"{self.name} exited:\n{said}")
                try:
                    answer = await client.get(f"http://127.0.0.1:{self.port}/readyz")
                except httpx.TransportError:
                    return False
                return answer.status_code == 200

            await eventually(ready, f"{self.name} to be ready", timeout=timeout)

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def rss_mb(pid: int) -> float:
    """Resident memory of one process, in MiB."""
    return float(psutil.Process(pid).memory_info().rss) / MB


def cpu_seconds(pid: int) -> float:
    """User and system CPU a process has used so far: less sensitive than wall time to
    whatever else the machine runs, so a per-request figure from it compares across runs."""
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def server_pids(pid_file: Path, *, with_children: bool) -> list[int]:
    """The processes of a server that keeps its pid in ``pid_file`` (Kafka's ``kafka.pid``,
    PostgreSQL's ``postmaster.pid``) and, with ``with_children``, its children at this
    moment: PostgreSQL's backends (one a connection) and background workers."""
    try:
        server = psutil.Process(int(pid_file.read_text().split()[0]))
        children = server.children() if with_children else []
    except (OSError, ValueError, IndexError, psutil.Error):
        return []
    return [server.pid, *(child.pid for child in children)]


@dataclass
class RssWatch:
    """The highest resident memory of a process while the watch runs."""

    pid: int
    every: float = 0.2
    samples: list[float] = field(default_factory=list)

    @property
    def peak_mb(self) -> float | None:
        return max(self.samples) if self.samples else None

    async def _sample(self) -> None:
        while True:
            with contextlib.suppress(psutil.Error):
                self.samples.append(rss_mb(self.pid))
            await asyncio.sleep(self.every)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[RssWatch]:
        task = asyncio.create_task(self._sample())
        try:
            yield self
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
