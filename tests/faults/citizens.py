"""Load for the fault tests: citizens filing complaints the way a phone would.

Each complaint has its own Idempotency-Key; an attempt that gets no answer, or a 5xx, is sent
again with the same key, as the citizen page does, so a complaint committed just before intake
died is acknowledged once, on the retry, and never filed twice. Only the ids of 201 answers
count as acknowledged: that is the promise the checker holds the system to.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from uuid import uuid4

import httpx

# A village of 渊泉镇 that owns its own complaints (an ordinary first assignment).
VILLAGE = "620922100001"
# An attempt that fails is tried again after this long: a phone's retry, not a wait for time.
RETRY_PAUSE = 0.25
# Give up on one complaint after this many attempts, half a minute (it is then not
# acknowledged, and the checker does not expect it anywhere).
MAX_ATTEMPTS = 120


@dataclass
class Citizens:
    """Files complaints at intake with ``workers`` citizens at once until stopped."""

    intake_url: Callable[[], str]
    workers: int = 1
    # Between two complaints of one citizen: keeps the load steady (a few a second) rather
    # than flat out, below what routing applies on two busy cores, so a test spends its time
    # on the fault and not on a backlog of its own making.
    pause: float = 0.2
    category: str = "道路交通"
    acknowledged: list[str] = field(default_factory=list)
    # Each acknowledged complaint's citizen token, which opens its view.
    tokens: dict[str, str] = field(default_factory=dict)
    # What failed attempts got: a status code or the transport error's name, with counts.
    refused: Counter[str] = field(default_factory=Counter)
    # 201 answers that replayed an earlier commit (Idempotent-Replayed: true).
    replayed: int = 0
    _batch: str = field(default_factory=lambda: uuid4().hex[:8])
    _numbers: itertools.count[int] = field(default_factory=itertools.count)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)

    def start(self) -> None:
        self._stopping.clear()
        self._tasks = [asyncio.create_task(self._citizen()) for _ in range(self.workers)]

    async def stop(self) -> None:
        """Stop filing; a complaint in hand is still seen through to its answer."""
        self._stopping.set()
        for task in self._tasks:
            await task
        self._tasks.clear()

    async def file(self, count: int) -> list[str]:
        """File ``count`` complaints one after another; returns their ids."""
        async with httpx.AsyncClient(timeout=15) as client:
            ids = [await self._one(client) for _ in range(count)]
        return [complaint_id for complaint_id in ids if complaint_id is not None]

    async def _citizen(self) -> None:
        async with httpx.AsyncClient(timeout=15) as client:
            while not self._stopping.is_set():
                await self._one(client)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), self.pause)

    async def _one(self, client: httpx.AsyncClient) -> str | None:
        number = next(self._numbers)
        key = f"fault-{self._batch}-{number}"
        body = {
            "description": f"村口路灯坏了 #{number}",
            "location": {"village_code": VILLAGE},
            "category": self.category,
        }
        for _ in range(MAX_ATTEMPTS):
            try:
                answer = await client.post(
                    f"{self.intake_url()}/api/v1/complaints",
                    json=body,
                    headers={"Idempotency-Key": key},
                )
            except httpx.TransportError as error:
                self.refused[type(error).__name__] += 1
            else:
                if answer.status_code == 201:
                    receipt = answer.json()
                    complaint_id: str = receipt["id"]
                    self.acknowledged.append(complaint_id)
                    self.tokens[complaint_id] = receipt["citizen_token"]
                    self.replayed += answer.headers.get("Idempotent-Replayed") == "true"
                    return complaint_id
                self.refused[str(answer.status_code)] += 1
                if answer.status_code < 500:
                    raise AssertionError(f"intake refused a valid complaint: {answer.text}")
            await asyncio.sleep(RETRY_PAUSE)
        return None
