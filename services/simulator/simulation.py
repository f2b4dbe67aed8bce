"""The replay: the whole embedded system on a fake clock, fed by citizens and staff.

Nothing here models the system. Complaints go in through ``POST /api/v1/complaints``, staff
act through ``POST /api/v1/complaints/{id}/accept|reply|resolve``, deadlines fire from
escalation's own table, and the figures are read from ``GET /api/v1/stats``. The simulated
staff learn about their work the way a duty officer's phone does: from the events on the
log (assigned, escalated), read by a consumer group of their own.

Time moves from one thing to the next, never in fixed ticks: to the next arrival slot, the
next staff step, or the next deadline escalation has pending, whichever comes first. The
system settles (``Runtime.drain``) after each slot of submissions and at every deadline, so a
step taken after a deadline always finds the deadline fired, as it would in the live system.
Staff steps need no settling of their own: routing records them in the request, and the
next settle hands their events on before any later deadline fires.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from itertools import count
from pathlib import Path
from time import perf_counter
from typing import Any

import httpx

from services.embedded import System
from services.escalation import store as escalation_store
from services.simulator.arrivals import Arrival, arrivals
from services.simulator.figures import Heard, Report, Run, report
from services.simulator.sandbox import running_system
from services.simulator.scenario import Scenario
from services.simulator.staff import Staff, Step
from yijian.clock import FakeClock
from yijian.contracts import Envelope
from yijian.contracts.events import (
    TOPIC_CASES,
    TOPIC_INTAKE,
    ComplaintAssigned,
    ComplaintEscalated,
    ComplaintReminded,
    ComplaintResolved,
    ComplaintSubmitted,
)
from yijian.db import reading

STAFF_USER = "模拟值班员"  # who the audit log says acted: plainly not a person
SUBSCRIBER = "simulator"
Progress = Callable[[int, int], None]  # (simulated days done, days in all)


class Replay:
    def __init__(
        self,
        scenario: Scenario,
        system: System,
        client: httpx.AsyncClient,
        progress: Progress | None = None,
    ) -> None:
        assert isinstance(system.clock, FakeClock)
        self.scenario = scenario
        self.system = system
        self.clock: FakeClock = system.clock
        self.client = client
        self.staff = Staff(scenario)
        self.heard = Heard()
        self.submitted = 0
        self.refused = 0
        self.settles = 0
        self._agenda: list[tuple[datetime, int, Arrival | Step]] = []
        self._order = count()
        self._progress = progress
        self._days_done = 0
        self._next_fire: datetime | None = None
        self._inbox = system.event_log.subscribe(SUBSCRIBER, [TOPIC_INTAKE, TOPIC_CASES])

    async def run(self) -> None:
        self._plan(arrivals(self.scenario, self.system.jurisdiction))
        end = self.scenario.finish
        while True:
            step_at = self._agenda[0][0] if self._agenda else end
            due = min(step_at, self._next_fire or end, end)
            if due >= end:
                break
            self.clock.set(max(due, self.clock.now()))
            self._report_progress()
            if self._next_fire is not None and self._next_fire <= step_at:
                await self._settle()
                continue
            if await self._take_due_steps():
                await self._settle()
        self.clock.set(end)
        await self._settle()
        await self._inbox.close()

    def _report_progress(self) -> None:
        days = (self.clock.now() - self.scenario.start) // timedelta(days=1)
        if self._progress is not None and days > self._days_done:
            self._days_done = days
            self._progress(days, self.scenario.days + self.scenario.follow_days)

    async def figures(self) -> dict[str, Any]:
        """The county platform's view of the run, from the system's own statistics."""
        response = await self.client.get(
            "/api/v1/stats",
            params={
                "from": self.scenario.start.isoformat(),
                "to": self.scenario.finish.isoformat(),
            },
            headers=self._staff(self.system.jurisdiction.county.code),
        )
        response.raise_for_status()
        answer: dict[str, Any] = response.json()
        return answer

    def _plan(self, items: Iterable[Arrival | Step]) -> None:
        for item in items:
            heapq.heappush(self._agenda, (item.at, next(self._order), item))

    async def _take_due_steps(self) -> bool:
        """Everything due now, in order; True when something was submitted."""
        submitted = False
        now = self.clock.now()
        while self._agenda and self._agenda[0][0] <= now:
            _, _, item = heapq.heappop(self._agenda)
            if isinstance(item, Arrival):
                await self._submit(item)
                submitted = True
            elif self.staff.current(item):
                await self._act(item)
        return submitted

    async def _submit(self, arrival: Arrival) -> None:
        response = await self.client.post(
            "/api/v1/complaints",
            json={
                "description": arrival.description,
                "location": {"village_code": arrival.village_code},
                "category": arrival.category,
                "urgency": arrival.urgency,
            },
        )
        if response.status_code != 201:
            raise RuntimeError(f"intake refused a simulated complaint: {response.text}")
        self.staff.know(response.json()["id"], arrival.number)
        self.submitted += 1

    async def _act(self, step: Step) -> None:
        body = None if step.action == "accept" else {"message": _MESSAGES[step.action]}
        response = await self.client.post(
            f"/api/v1/complaints/{step.complaint_id}/{step.action}",
            json=body,
            headers=self._staff(step.actor),
        )
        if response.status_code != 200:
            # The case moved on in a way the staff did not foresee; counted, never fatal.
            self.refused += 1
            self.staff.stop(step.complaint_id)

    async def _settle(self) -> None:
        await self.system.runtime.drain()
        await self._listen()
        async with reading(self.system.escalation.database.engine) as connection:
            # Straight from escalation's table: the ops API would answer the same, four
            # queries dearer, and this runs thousands of times a simulated month.
            self._next_fire = await escalation_store.next_fire_at(connection)
        if self._next_fire is not None and self._next_fire <= self.clock.now():
            raise RuntimeError(f"a deadline due at {self._next_fire} did not fire")
        self.settles += 1

    async def _listen(self) -> None:
        while deliveries := await self._inbox.poll(1000, 0):
            for delivery in deliveries:
                self._hear(delivery.envelope)
            await self._inbox.commit(deliveries)

    def _hear(self, envelope: Envelope) -> None:
        when = envelope.occurred_at
        if envelope.type == ComplaintSubmitted.TYPE:
            submitted = envelope.parse(ComplaintSubmitted)
            self.heard.submitted_at[submitted.complaint_id] = submitted.submitted_at
        elif envelope.type == ComplaintAssigned.TYPE:
            assigned = envelope.parse(ComplaintAssigned)
            if assigned.status == "assigned":  # not a dispatch queue: no village to act
                org = assigned.assignee.code
                self._plan(self.staff.take(assigned.complaint_id, assigned.level, org, when))
        elif envelope.type == ComplaintEscalated.TYPE:
            escalated = envelope.parse(ComplaintEscalated)
            org = escalated.supervisor.code
            self._plan(self.staff.take(escalated.complaint_id, escalated.level, org, when))
        elif envelope.type == ComplaintReminded.TYPE:
            self.heard.reminders[envelope.parse(ComplaintReminded).level] += 1
        elif envelope.type == ComplaintResolved.TYPE:
            resolved = envelope.parse(ComplaintResolved)
            self.staff.stop(resolved.complaint_id)
            since = self.heard.submitted_at.get(resolved.complaint_id, when)
            self.heard.resolutions.append((resolved.level, when - since))

    def _staff(self, org_code: str) -> dict[str, str]:
        # A fresh token each time: a simulated month outlives any token's lifetime.
        token = self.system.routing.tokens.issue(STAFF_USER, org_code)
        return {"Authorization": f"Bearer {token}"}


_MESSAGES = {"reply": "【模拟】已联系当事人，正在处理", "resolve": "【模拟】已处理完毕"}


async def simulate(
    scenario: Scenario,
    policy: Path | None = None,
    data_dir: Path | None = None,
    progress: Progress | None = None,
) -> Report:
    """Replay the scenario against the policy (the shipped default when None)."""
    started = perf_counter()
    async with running_system(scenario, policy, data_dir) as (system, client):
        replay = Replay(scenario, system, client, progress)
        await replay.run()
        figures = await replay.figures()
        return report(
            scenario,
            system.policy.source,
            figures,
            replay.heard,
            Run(replay.submitted, replay.refused, replay.settles, perf_counter() - started),
        )
