"""The verdict of a fault run: what intake acknowledged against what every service holds.

A fault test (or ``make soak``) keeps the id of every complaint intake answered 201 for. The
checker reads each service's own database and counts, for those ids only (so tests that share
one set-up never see each other's complaints):

=======================  ===================================================================
acknowledged             ids intake answered 201 for
stored                   … found in intake's ``complaints``
assigned                 … with a case in routing
scheduled                … with deadline rows in escalation
notified                 … with at least one delivery in notify
escalated                … escalated by routing at least once (so a test knows its
                         deadlines have run their course)
lost                     … missing from any of the four: a 201 that did not reach everyone
assigned twice           cases holding more stints than their hand-overs explain
duplicate deadlines      one deadline (complaint, clock, level, stage, kind) fired twice
duplicate escalations    escalations routing recorded beyond the missed deadlines escalation
                         fired (a missed deadline escalates at most once)
duplicate notifications  a recipient given two messages for one event, or the same words
                         about one complaint twice (reminders aside: each level's reminder
                         may read like the one before, and a reminder sent twice shows as a
                         duplicate deadline)
=======================  ===================================================================

Routing is read before escalation: an escalation follows the firing that caused it, so a
snapshot taken in that order can never show an escalation without its fired deadline.

Run by hand against any installation, with the acknowledged ids one per line in a file and
the databases from the services' own variables (``YIJIAN_INTAKE_DATABASE_URL`` …)::

    python -m tests.faults.checker acknowledged.txt
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections import Counter
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import NamedTuple, TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from services.escalation.store import deadlines
from services.intake.store import complaints
from services.notify.store import deliveries
from services.routing.store import case_actions, cases, level_stints

# Stint outcomes that hand a case on to a new stint (see services/routing/repository.py);
# "resolved" ends a stint without one.
HAND_OVERS = frozenset({"escalated", "dispatched", "returned", "reopened"})
# Deadline kinds that fire once per set of clocks; "repeat" rows are meant to recur.
ONCE_ONLY = frozenset({"remind", "due"})
# 催办 may repeat its words by design: the county's overdue reminder every day, and a level's
# reminder when its deadline falls on the same minute as the level's below (the text names
# the assignee and the time, not the level).
REPEATABLE_TEMPLATES = frozenset({"reminder"})
T = TypeVar("T")


@dataclass(frozen=True)
class ServiceDatabases:
    intake: str
    routing: str
    escalation: str
    notify: str

    @classmethod
    def from_environment(cls, env: Mapping[str, str]) -> ServiceDatabases:
        try:
            return cls(
                **{f.name: env[f"YIJIAN_{f.name.upper()}_DATABASE_URL"] for f in fields(cls)}
            )
        except KeyError as missing:
            raise SystemExit(f"set {missing.args[0]} to that service's database URL") from None


@dataclass(frozen=True)
class Figures:
    acknowledged: int
    stored: int
    assigned: int
    scheduled: int
    notified: int
    escalated: int
    lost: int
    assigned_twice: int
    duplicate_deadlines: int
    duplicate_escalations: int
    duplicate_notifications: int

    @property
    def duplicates(self) -> int:
        return (
            self.assigned_twice
            + self.duplicate_deadlines
            + self.duplicate_escalations
            + self.duplicate_notifications
        )

    @property
    def sound(self) -> bool:
        """Nothing acknowledged is missing anywhere, and nothing happened twice."""
        return self.lost == 0 and self.duplicates == 0

    def table(self, title: str = "checker") -> str:
        rows = [(name.replace("_", " "), str(value)) for name, value in asdict(self).items()]
        width = max(len(name) for name, _ in rows)
        lines = [title] + [f"  {name:<{width}}  {value:>7}" for name, value in rows]
        return "\n".join(lines)


async def check(databases: ServiceDatabases, acknowledged: Collection[str]) -> Figures:
    """Count what each service holds of the ``acknowledged`` complaints."""
    wanted = set(acknowledged)
    stored = await _read(databases.intake, _intake_ids)
    routing = await _read(databases.routing, _routing_rows)
    escalation = await _read(databases.escalation, _escalation_rows)
    notify = await _read(databases.notify, _notify_rows)

    assigned = routing.cases & wanted
    scheduled = {row.complaint_id for row in escalation} & wanted
    notified = {row.complaint_id for row in notify} & wanted
    everywhere = (stored & wanted) & assigned & scheduled & notified
    return Figures(
        acknowledged=len(wanted),
        stored=len(stored & wanted),
        assigned=len(assigned),
        scheduled=len(scheduled),
        notified=len(notified),
        escalated=len(set(routing.escalations) & wanted),
        lost=len(wanted - everywhere),
        assigned_twice=_assigned_twice(routing.stints, wanted),
        duplicate_deadlines=_duplicate_deadlines(escalation, wanted),
        duplicate_escalations=_duplicate_escalations(routing.escalations, escalation, wanted),
        duplicate_notifications=_duplicate_notifications(notify, wanted),
    )


async def settled(
    databases: ServiceDatabases,
    acknowledged: Collection[str],
    timeout: float = 120.0,
    ready: Callable[[Figures], bool] | None = None,
) -> Figures:
    """Poll ``check`` until nothing acknowledged is lost (or ``ready`` holds); bounded.

    Returns the last figures either way, so a test's assertion shows the whole table.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        figures = await check(databases, acknowledged)
        if (ready or _nothing_lost)(figures) or loop.time() > deadline:
            return figures
        await asyncio.sleep(0.5)


def _nothing_lost(figures: Figures) -> bool:
    return figures.lost == 0


class _Deadline(NamedTuple):
    complaint_id: str
    clock: int
    level: str
    stage: str
    kind: str
    state: str


class _Delivery(NamedTuple):
    complaint_id: str
    event_id: str
    recipient_key: str
    template: str
    text: str


@dataclass(frozen=True)
class _RoutingRows:
    cases: set[str]
    stints: list[tuple[str, str | None]]  # (complaint, outcome)
    escalations: Counter[str]


async def _read(url: str, reader: Callable[[AsyncConnection], Awaitable[T]]) -> T:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            if connection.dialect.name == "postgresql":
                # One snapshot for all of a service's reads, so its tables agree.
                await connection.execution_options(isolation_level="REPEATABLE READ")
            return await reader(connection)
    finally:
        await engine.dispose()


async def _intake_ids(connection: AsyncConnection) -> set[str]:
    return set((await connection.scalars(select(complaints.c.id))).all())


async def _routing_rows(connection: AsyncConnection) -> _RoutingRows:
    found = set((await connection.scalars(select(cases.c.complaint_id))).all())
    stints = [
        (row.complaint_id, row.outcome)
        for row in await connection.execute(
            select(level_stints.c.complaint_id, level_stints.c.outcome)
        )
    ]
    escalated = await connection.scalars(
        select(case_actions.c.complaint_id).where(case_actions.c.action == "escalate")
    )
    return _RoutingRows(found, stints, Counter(escalated.all()))


async def _escalation_rows(connection: AsyncConnection) -> list[_Deadline]:
    columns = [getattr(deadlines.c, name) for name in _Deadline._fields]
    return [_Deadline(*row) for row in await connection.execute(select(*columns))]


async def _notify_rows(connection: AsyncConnection) -> list[_Delivery]:
    columns = [getattr(deliveries.c, name) for name in _Delivery._fields]
    return [_Delivery(*row) for row in await connection.execute(select(*columns))]


def _assigned_twice(stints: Iterable[tuple[str, str | None]], wanted: set[str]) -> int:
    """Cases with more than one stint that no hand-over opened: the first stint is the
    assignment, and every later one must follow a stint that ended in a hand-over."""
    opened: Counter[str] = Counter()
    handed_on: Counter[str] = Counter()
    for complaint_id, outcome in stints:
        if complaint_id in wanted:
            opened[complaint_id] += 1
            handed_on[complaint_id] += outcome in HAND_OVERS
    return sum(1 for complaint_id, count in opened.items() if count - handed_on[complaint_id] > 1)


def _duplicate_deadlines(rows: Iterable[_Deadline], wanted: set[str]) -> int:
    fired = Counter(
        (row.complaint_id, row.clock, row.level, row.stage, row.kind)
        for row in rows
        if row.complaint_id in wanted and row.state == "fired" and row.kind in ONCE_ONLY
    )
    return sum(count - 1 for count in fired.values() if count > 1)


def _duplicate_escalations(
    escalations: Counter[str], rows: Iterable[_Deadline], wanted: set[str]
) -> int:
    # Only a missed deadline below the county escalates; at the county it marks overdue.
    missed = Counter(
        row.complaint_id
        for row in rows
        if row.kind == "due" and row.state == "fired" and row.level != "county"
    )
    return sum(
        max(0, count - missed[complaint_id])
        for complaint_id, count in escalations.items()
        if complaint_id in wanted
    )


def _duplicate_notifications(rows: Iterable[_Delivery], wanted: set[str]) -> int:
    ours = [row for row in rows if row.complaint_id in wanted]
    per_event = Counter((row.event_id, row.recipient_key) for row in ours)
    same_words = Counter(
        (row.complaint_id, row.recipient_key, row.text)
        for row in ours
        if row.template not in REPEATABLE_TEMPLATES
    )
    return sum(count - 1 for count in (*per_event.values(), *same_words.values()) if count > 1)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m tests.faults.checker ACKNOWLEDGED_IDS_FILE", file=sys.stderr)
        return 2
    acknowledged = Path(argv[0]).read_text(encoding="utf-8").split()
    databases = ServiceDatabases.from_environment(os.environ)
    figures = asyncio.run(check(databases, acknowledged))
    print(figures.table())
    return 0 if figures.sound else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
