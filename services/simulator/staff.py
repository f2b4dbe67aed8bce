"""The simulated staff: what a level does once it is accountable for a complaint, and when.

When a complaint reaches a level (assigned to it, or climbed to it under 督办) that level's
staff draw, once, whether they respond at all and how long each step takes: 签收, then
答复 if the scenario has replies, then 办结, each counted from the one before on the level's
calendar. A climb voids the steps the lower level had not taken yet: under 督办 the
supervising level drives the work, and the figures credit the level accountable at the end.

The draws are seeded by the scenario's seed, the complaint's arrival number and the level,
so the same complaint at the same level behaves the same under any policy: comparing two
policies compares deadlines, not luck.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from services.simulator.scenario import Scenario
from yijian import calendar
from yijian.level import Level

StaffAction = Literal["accept", "reply", "resolve"]


@dataclass(frozen=True)
class Step:
    at: datetime
    complaint_id: str
    plan: int  # which of the complaint's plans this belongs to; a newer one voids it
    action: StaffAction
    actor: str  # the org code whose staff act
    level: Level


class Staff:
    def __init__(self, scenario: Scenario) -> None:
        self._scenario = scenario
        self._numbers: dict[str, int] = {}
        self._plans: dict[str, int] = {}

    def know(self, complaint_id: str, number: int) -> None:
        """Remember which arrival a complaint id came from (its submit answered with the id)."""
        self._numbers[complaint_id] = number

    def take(self, complaint_id: str, level: Level, actor: str, since: datetime) -> list[Step]:
        """``level`` became accountable at ``since``: the steps its staff will take, if any."""
        plan = self._void(complaint_id)
        behaviour = self._scenario.levels.of(level)
        number = self._numbers.get(complaint_id, complaint_id)
        rng = random.Random(f"{self._scenario.seed}/staff/{number}/{level.value}")
        # Draw everything, always in the same order, so the stream never depends on choices.
        responds = rng.random() < behaviour.responds
        delays: list[tuple[StaffAction, timedelta]] = [("accept", behaviour.accept.draw(rng))]
        if behaviour.reply is not None:
            delays.append(("reply", behaviour.reply.draw(rng)))
        delays.append(("resolve", behaviour.resolve.draw(rng)))
        if not responds:
            return []
        steps = []
        moment = since
        for action, delay in delays:
            moment = calendar.add(moment, delay, behaviour.calendar)
            steps.append(Step(moment, complaint_id, plan, action, actor, level))
        return steps

    def current(self, step: Step) -> bool:
        return self._plans.get(step.complaint_id) == step.plan

    def stop(self, complaint_id: str) -> None:
        """Nothing more to do for this complaint (resolved, or the system refused a step)."""
        self._void(complaint_id)

    def _void(self, complaint_id: str) -> int:
        plan = self._plans.get(complaint_id, 0) + 1
        self._plans[complaint_id] = plan
        return plan
