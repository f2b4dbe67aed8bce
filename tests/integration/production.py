"""The production shape for tests: each service in its own process, on Kafka and PostgreSQL.

Time is shared through a clock file (``YIJIAN_CLOCK_FILE``) the test moves, so deadlines
come due without anyone waiting for them. Starting and stopping the processes is
``deploy.local.stack``'s, shared with the benchmarks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from deploy.local.stack import SERVICES, ServiceProcesses, eventually, production_env

__all__ = ["SERVICES", "Production", "eventually", "json_of", "production_env"]


@dataclass
class Production(ServiceProcesses):
    # Keyword-only: the processes' fields before them have defaults.
    clock_file: Path = field(kw_only=True)
    now: datetime = field(kw_only=True)
    databases: dict[str, str] = field(default_factory=dict)

    def set_clock(self, instant: datetime) -> None:
        self.now = instant
        temporary = self.clock_file.with_suffix(".tmp")
        temporary.write_text(instant.isoformat(), encoding="utf-8")
        temporary.replace(self.clock_file)  # atomic: a reader never sees half a timestamp

    def advance(self, span: timedelta) -> None:
        self.set_clock(self.now + span)


def json_of(answer: httpx.Response) -> Any:
    assert answer.status_code < 400, answer.text
    return answer.json()
