"""What the composition root needs from each service, and nothing more."""

from __future__ import annotations

from typing import Protocol

from fastapi import APIRouter

from yijian.bus.consumer import Consumer
from yijian.bus.outbox import ServiceDatabase


class Service(Protocol):
    name: str
    database: ServiceDatabase
    consumers: list[Consumer]
    router: APIRouter

    async def prepare(self) -> None:
        """Create or migrate the service's tables and load its reference data."""
        ...

    async def tick(self) -> int:
        """Do the time-driven work now due (deadlines, retries); returns how much was done.

        The runtime calls it in a loop; tests call it after moving a fake clock.
        """
        ...

    async def observe(self) -> None:
        """Refresh the service's own gauges (pending deadlines and the like)."""
        ...

    async def close(self) -> None:
        """Release what the service holds besides its engine (HTTP clients and the like)."""
        ...
