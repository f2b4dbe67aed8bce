"""Reads and writes cases, their action log and their level stints, inside a transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.engine import Row

from services.routing.domain import Case
from services.routing.store import case_actions, cases, level_stints
from yijian.bus.outbox import Transaction
from yijian.contracts.events import CaseStatus, Org
from yijian.level import Level


@dataclass(frozen=True)
class Place:
    """Where the complaint is, as far as the jurisdiction could tell."""

    township_code: str | None
    village_code: str | None
    grid_code: str | None


@dataclass(frozen=True)
class StoredCase:
    case: Case
    place: Place
    correlation_id: str


def _org(code: str | None, name: str | None, level: str | None) -> Org | None:
    if code is None or name is None or level is None:
        return None
    return Org(code=code, name=name, level=Level(level))


def case_from_row(row: Row[tuple[object, ...]]) -> Case:
    assignee = _org(row.assignee_code, row.assignee_name, row.assignee_level)
    assert assignee is not None
    return Case(
        complaint_id=row.complaint_id,
        tracking_no=row.tracking_no,
        category=row.category,
        urgency="urgent" if row.urgency == "urgent" else "normal",
        status=CaseStatus(row.status),
        level=Level(row.level),
        assignee=assignee,
        supervisor=_org(row.supervisor_code, row.supervisor_name, row.supervisor_level),
        clock=row.clock,
        returns=row.returns,
        reopens=row.reopens,
        overdue=row.overdue,
        missed_deadlines=row.missed_deadlines,
        visited=row.visited_at is not None,
    )


def _columns(case: Case) -> dict[str, object]:
    supervisor = case.supervisor
    return {
        "status": case.status.value,
        "level": case.level.value,
        "assignee_code": case.assignee.code,
        "assignee_name": case.assignee.name,
        "assignee_level": case.assignee.level.value,
        "supervisor_code": supervisor.code if supervisor else None,
        "supervisor_name": supervisor.name if supervisor else None,
        "supervisor_level": supervisor.level.value if supervisor else None,
        "clock": case.clock,
        "returns": case.returns,
        "reopens": case.reopens,
        "overdue": case.overdue,
        "missed_deadlines": case.missed_deadlines,
    }


# The inserts as fixed statements with their rows as parameters: SQLAlchemy finds each one
# compiled at once, where ``insert(...).values(...)`` is built and keyed again on every call
# (the outbox insert measured the same change: 0.40 → 0.27 ms of CPU per event).
_ADD_CASE = insert(cases)
_ADD_ACTION = insert(case_actions)
_ADD_STINT = insert(level_stints)
_SAVE_CASE = update(cases).where(cases.c.complaint_id == bindparam("case_of"))
_GET_CASE = select(cases).where(cases.c.complaint_id == bindparam("case_of"))
_GET_CASE_FOR_UPDATE = _GET_CASE.with_for_update()
# Deadlines escalation set, kept only while they belong to the case's current clock.
_SET_DEADLINES = (
    update(cases)
    .where(
        cases.c.complaint_id == bindparam("of_complaint"), cases.c.clock == bindparam("of_clock")
    )
    .values(accept_due_at=bindparam("accept_due_at"), resolve_due_at=bindparam("resolve_due_at"))
)


class CaseRepository:
    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    async def get(self, complaint_id: str) -> StoredCase | None:
        # FOR UPDATE where the database has row locks; SQLite's write lock covers the case.
        locked = self._tx.connection.dialect.name != "sqlite"
        query = _GET_CASE_FOR_UPDATE if locked else _GET_CASE
        row = (await self._tx.connection.execute(query, {"case_of": complaint_id})).first()
        if row is None:
            return None
        return StoredCase(
            case_from_row(row),
            Place(row.township_code, row.village_code, row.grid_code),
            row.correlation_id,
        )

    async def add(
        self, case: Case, place: Place, submitted_at: datetime, correlation_id: str
    ) -> None:
        await self._tx.connection.execute(
            _ADD_CASE,
            {
                "complaint_id": case.complaint_id,
                "tracking_no": case.tracking_no,
                "category": case.category,
                "urgency": case.urgency,
                "township_code": place.township_code,
                "village_code": place.village_code,
                "grid_code": place.grid_code,
                "submitted_at": submitted_at,
                "correlation_id": correlation_id,
                "updated_at": self._tx.now,
                "clock_started_at": self._tx.now,
                **_columns(case),
            },
        )
        await self._open_stint(case, place)

    async def save(
        self,
        before: Case,
        after: Case,
        place: Place,
        outcome: str | None,
        *,
        visit_satisfied: bool | None = None,
    ) -> None:
        """Store ``after``; when the accountable level or org changed, start a new stint."""
        values = {"updated_at": self._tx.now, **_columns(after)}
        if after.clock != before.clock:
            # A fresh set of clocks: the old deadlines no longer hold, the new ones follow
            # in escalation.deadlines_set.
            values |= {"clock_started_at": self._tx.now, "accept_due_at": None}
            values |= {"resolve_due_at": None}
        if after.visited and not before.visited:
            values |= {"visited_at": self._tx.now, "visit_satisfied": visit_satisfied}
        elif before.visited and not after.visited:
            values |= {"visited_at": None, "visit_satisfied": None}
        await self._tx.connection.execute(_SAVE_CASE, {"case_of": after.complaint_id, **values})
        if outcome is not None:
            await self._close_stint(after.complaint_id, outcome, missed=outcome == "escalated")
            if after.clock != before.clock:
                await self._open_stint(after, place)
        if after.status == CaseStatus.ACCEPTED and before.status != CaseStatus.ACCEPTED:
            await self._tx.connection.execute(
                update(level_stints)
                .where(
                    level_stints.c.complaint_id == after.complaint_id,
                    level_stints.c.left_at.is_(None),
                    level_stints.c.accepted_at.is_(None),
                )
                .values(accepted_at=self._tx.now)
            )
        if after.overdue and not before.overdue:
            await self._tx.connection.execute(
                update(level_stints)
                .where(
                    level_stints.c.complaint_id == after.complaint_id,
                    level_stints.c.left_at.is_(None),
                )
                .values(missed=True)
            )

    async def set_deadlines(
        self, complaint_id: str, clock: int, accept_due_at: datetime, resolve_due_at: datetime
    ) -> bool:
        """Keep the deadlines escalation set, if they belong to the case's current clocks."""
        result = await self._tx.connection.execute(
            _SET_DEADLINES,
            {
                "of_complaint": complaint_id,
                "of_clock": clock,
                "accept_due_at": accept_due_at,
                "resolve_due_at": resolve_due_at,
            },
        )
        return bool(result.rowcount)

    async def record(
        self,
        before: Case,
        after: Case,
        action: str,
        actor_org: str | None,
        actor_user: str | None,
        note: str | None = None,
    ) -> None:
        await self._tx.connection.execute(
            _ADD_ACTION,
            {
                "complaint_id": after.complaint_id,
                "at": self._tx.now,
                "action": action,
                "actor_org": actor_org,
                "actor_user": actor_user,
                "from_status": before.status.value,
                "to_status": after.status.value,
                "note": note,
            },
        )

    async def _open_stint(self, case: Case, place: Place) -> None:
        await self._tx.connection.execute(
            _ADD_STINT,
            {
                "complaint_id": case.complaint_id,
                "level": case.level.value,
                "org_code": case.accountable.code,
                "township_code": place.township_code,
                "village_code": place.village_code,
                "entered_at": self._tx.now,
                "missed": False,
            },
        )

    async def _close_stint(self, complaint_id: str, outcome: str, *, missed: bool) -> None:
        values: dict[str, object] = {"left_at": self._tx.now, "outcome": outcome}
        if missed:
            values["missed"] = True
        await self._tx.connection.execute(
            update(level_stints)
            .where(level_stints.c.complaint_id == complaint_id, level_stints.c.left_at.is_(None))
            .values(**values)
        )
