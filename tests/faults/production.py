"""The production shape for fault tests: four ``yijian serve`` processes that a test can kill,
freeze, start twice over, fence off or put on a skewed clock.

One set-up per test module (starting it takes most of a minute here), so it is built by a plain
context manager from a synchronous module-scoped fixture; tests keep their own complaint ids
and the checker counts only those.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

import httpx
from sqlalchemy.engine import make_url

from deploy.local.stack import YIJIAN, LocalPostgres, free_port, run_script
from tests.faults.checker import ServiceDatabases
from tests.integration.production import SERVICES, Production, production_env

# Monday 2026-03-02 09:00 in Beijing: an ordinary working day for every calendar.
MONDAY_MORNING = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


@dataclass
class FaultyProduction(Production):
    """``Production`` with a clock of escalation's own and processes started by name.

    A process is named by its service, or by a replica name (``routing-2``) for a second copy;
    ``url``, ``kill`` and ``wait_ready`` take either.
    """

    escalation_clock: Path = field(kw_only=True)
    escalation_skew: timedelta = field(default=timedelta(0), kw_only=True)
    # Per service: extra environment, and a command the process is started under (ip netns).
    service_env: dict[str, dict[str, str]] = field(default_factory=dict, kw_only=True)
    launcher: dict[str, list[str]] = field(default_factory=dict, kw_only=True)
    hosts: dict[str, str] = field(default_factory=dict, kw_only=True)
    # Per service: host:port it reaches its database through (a relay), instead of the URL's.
    database_via: dict[str, str] = field(default_factory=dict, kw_only=True)

    @property
    def service_databases(self) -> ServiceDatabases:
        return ServiceDatabases(**{service: self.databases[service] for service in SERVICES})

    def url(self, service: str) -> str:
        return f"http://{self.hosts.get(service, '127.0.0.1')}:{self.ports[service]}"

    def set_clock(self, instant: datetime) -> None:
        super().set_clock(instant)
        _write_instant(self.escalation_clock, instant + self.escalation_skew)

    def skew_escalation(self, span: timedelta) -> None:
        """Step escalation's clock alone, as NTP might on its host; other services keep theirs."""
        self.escalation_skew += span
        _write_instant(self.escalation_clock, self.now + self.escalation_skew)

    def align_clocks(self) -> None:
        """Bring every other service forward to escalation's time: one clock again, and
        escalation's does not step back."""
        skew, self.escalation_skew = self.escalation_skew, timedelta(0)
        self.advance(skew)

    def start(self, service: str, *, replica: str | None = None) -> None:
        name = replica or service
        port = self.ports.setdefault(name, free_port())
        env = {**self.env, **self.service_env.get(service, {})}
        if service in self.database_via:
            variable = f"YIJIAN_{service.upper()}_DATABASE_URL"
            url = make_url(env[variable]).set(
                host=self.database_via[service].rpartition(":")[0],
                port=int(self.database_via[service].rpartition(":")[2]),
            )
            env[variable] = url.render_as_string(hide_password=False)
        if service == "escalation":
            env["YIJIAN_CLOCK_FILE"] = str(self.escalation_clock)
        log = (self.logs / f"{name}.log").open("ab")
        command = [str(YIJIAN), "serve", service, "--port", str(port)]
        self.processes[name] = subprocess.Popen(
            [*self.launcher.get(service, []), *command],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def stop(self, name: str) -> None:
        """SIGTERM, as an orchestrator stops a pod: the process leaves its groups on the way."""
        process = self.processes.pop(name)
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)

    def freeze(self, name: str) -> None:
        """SIGSTOP: the process holds its sockets and its place in the group, and does nothing."""
        self.processes[name].send_signal(signal.SIGSTOP)

    def thaw(self, name: str) -> None:
        self.processes[name].send_signal(signal.SIGCONT)

    def stop_all(self) -> None:
        for process in self.processes.values():
            process.send_signal(signal.SIGCONT)  # a frozen process cannot act on SIGTERM
        super().stop_all()


def _write_instant(path: Path, instant: datetime) -> None:
    temporary = path.with_suffix(".tmp")
    temporary.write_text(instant.isoformat(), encoding="utf-8")
    temporary.replace(path)  # atomic: a reader never sees half a timestamp


@contextmanager
def production_on(
    folder: Path,
    *,
    bootstrap: str,
    postgres: LocalPostgres,
    extra_env: Mapping[str, str] | None = None,
    service_env: Mapping[str, dict[str, str]] | None = None,
    launcher: Mapping[str, list[str]] | None = None,
    hosts: Mapping[str, str] | None = None,
    database_via: Mapping[str, str] | None = None,
    start: Sequence[str] = SERVICES,
) -> Iterator[FaultyProduction]:
    """Four services on ``bootstrap`` and fresh databases of ``postgres``, under topics of
    their own; stopped (SIGTERM, then SIGKILL) when the block ends."""
    databases = {service: asyncio.run(postgres.new_database(service)) for service in SERVICES}
    ports = {service: free_port() for service in SERVICES}
    hosts = dict(hosts or {})
    clock_file = folder / "clock"
    env = production_env(
        bootstrap=bootstrap,
        databases=databases,
        data_dir=folder / "data",
        clock_file=clock_file,
        ports=ports,
        topic_prefix=f"f{uuid4().hex[:8]}.",
        # Staff sign in as in development: username = org code, the demo password.
        YIJIAN_DEMO_USERS="1",
        **dict(extra_env or {}),
    )
    for service, host in hosts.items():
        env[f"YIJIAN_{service.upper()}_URL"] = f"http://{host}:{ports[service]}"
    command = [str(YIJIAN), "kafka", "apply-topics", "--bootstrap", bootstrap]
    run_script("creating the topics", command, env, timeout=120)
    system = FaultyProduction(
        env=env,
        logs=folder,
        clock_file=clock_file,
        now=MONDAY_MORNING,
        databases=databases,
        escalation_clock=folder / "escalation-clock",
        service_env={key: dict(value) for key, value in (service_env or {}).items()},
        launcher={key: list(value) for key, value in (launcher or {}).items()},
        hosts=hosts,
        database_via=dict(database_via or {}),
    )
    system.ports.update(ports)
    system.set_clock(MONDAY_MORNING)
    try:
        for service in start:
            system.start(service)
        asyncio.run(_all_ready(system, start))
        yield system
    finally:
        system.stop_all()


async def _all_ready(system: FaultyProduction, services: Sequence[str]) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        for service in services:
            await system.wait_ready(client, service)
