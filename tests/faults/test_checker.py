"""The checker finds what it claims to: each kind of loss and duplicate, planted in four small
SQLite databases with the services' own tables, is counted, and only that.

The fault tests mostly see zeros; this is what shows a zero there is a measurement.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import MetaData, Table, insert

from services.escalation.store import deadlines
from services.escalation.store import metadata as escalation_tables
from services.intake.store import complaints
from services.intake.store import metadata as intake_tables
from services.notify.store import deliveries
from services.notify.store import metadata as notify_tables
from services.routing.store import case_actions, cases, level_stints
from services.routing.store import metadata as routing_tables
from tests.faults.checker import Figures, ServiceDatabases, check
from yijian.db import create_engine, create_tables

NOW = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


class Planted:
    """Rows for the four databases, added complaint by complaint."""

    def __init__(self) -> None:
        self.rows: dict[Table, list[dict[str, Any]]] = {}

    def add(self, table: Table, **values: Any) -> None:
        self.rows.setdefault(table, []).append(values)

    def complaint(self, complaint_id: str, *, routed: bool = True) -> None:
        """Stored, and (when ``routed``) assigned, scheduled and notified: once each."""
        self.add(
            complaints,
            id=complaint_id,
            tracking_no=f"GZ260302-{complaint_id.upper():0>6}",
            description="路灯坏了",
            urgency="normal",
            channel="web",
            submitted_at=NOW,
        )
        if not routed:
            return
        self.add(
            cases,
            complaint_id=complaint_id,
            tracking_no=complaint_id,
            urgency="normal",
            status="assigned",
            level="village",
            assignee_code="620922100001",
            assignee_name="村",
            assignee_level="village",
            clock=1,
            correlation_id="c",
            submitted_at=NOW,
            updated_at=NOW,
        )
        self.stint(complaint_id, "village", outcome=None)
        self.deadline(complaint_id, "village", "remind", state="pending")
        self.delivery(complaint_id, f"{complaint_id}-assigned", "new_assignment", "请签收")

    def stint(self, complaint_id: str, level: str, outcome: str | None) -> None:
        self.add(
            level_stints,
            complaint_id=complaint_id,
            level=level,
            org_code="620922100001",
            entered_at=NOW,
            left_at=None if outcome is None else NOW,
            outcome=outcome,
        )

    def escalation(self, complaint_id: str) -> None:
        self.add(
            case_actions,
            complaint_id=complaint_id,
            at=NOW,
            action="escalate",
            from_status="assigned",
            to_status="escalated",
        )

    def deadline(
        self, complaint_id: str, level: str, kind: str, *, state: str = "fired", clock: int = 1
    ) -> None:
        self.add(
            deadlines,
            complaint_id=complaint_id,
            clock=clock,
            level=level,
            stage="accept",
            kind=kind,
            fire_at=NOW,
            due_at=NOW + timedelta(hours=2),
            urgency="normal",
            state=state,
            started_at=NOW,
            correlation_id="c",
            created_at=NOW,
        )

    def delivery(self, complaint_id: str, event_id: str, template: str, text: str) -> None:
        self.add(
            deliveries,
            event_id=event_id,
            complaint_id=complaint_id,
            tracking_no=complaint_id,
            recipient_key="duty:620922100001",
            channel="log",
            template=template,
            text=text,
            status="sent",
            attempts=1,
            next_attempt_at=NOW,
            created_at=NOW,
        )


async def planted_in(planted: Planted, folder: Path) -> ServiceDatabases:
    urls: dict[str, str] = {}
    tables: dict[str, MetaData] = {
        "intake": intake_tables,
        "routing": routing_tables,
        "escalation": escalation_tables,
        "notify": notify_tables,
    }
    for service, metadata in tables.items():
        urls[service] = f"sqlite+aiosqlite:///{folder / service}.db"
        engine = create_engine(urls[service])
        try:
            await create_tables(engine, metadata)
            async with engine.begin() as connection:
                for table, rows in planted.rows.items():
                    if table.metadata is metadata:
                        await connection.execute(insert(table), rows)
        finally:
            await engine.dispose()
    return ServiceDatabases(**urls)


async def test_a_clean_history_is_sound(tmp_path: Path) -> None:
    planted = Planted()
    for name in ("a", "b"):
        planted.complaint(name)
    # b climbed properly: the village missed its deadline, routing escalated once.
    planted.deadline("b", "village", "due")
    planted.escalation("b")
    planted.stint("b", "village", outcome="escalated")
    planted.delivery("b", "b-escalated", "supervision", "【乡镇督办】…")
    figures = await check(await planted_in(planted, tmp_path), ["a", "b"])
    assert figures == Figures(
        acknowledged=2,
        stored=2,
        assigned=2,
        scheduled=2,
        notified=2,
        escalated=1,
        lost=0,
        assigned_twice=0,
        duplicate_deadlines=0,
        duplicate_escalations=0,
        duplicate_notifications=0,
    )
    assert figures.sound


async def test_each_planted_fault_is_counted_once(tmp_path: Path) -> None:
    planted = Planted()
    for name in ("twice", "escalated", "fired", "told", "reminded"):
        planted.complaint(name)
    planted.complaint("lost", routed=False)  # stored by intake, never reached routing
    planted.stint("twice", "village", outcome=None)  # a second assignment, nothing handed on
    planted.deadline("escalated", "village", "due")  # one missed deadline …
    planted.escalation("escalated")  # … escalated twice
    planted.escalation("escalated")
    planted.deadline("fired", "village", "due")  # one deadline fired twice
    planted.deadline("fired", "village", "due")
    planted.delivery("told", "told-1", "supervision", "【乡镇督办】同一句话")  # the same words
    planted.delivery("told", "told-2", "supervision", "【乡镇督办】同一句话")  # twice
    planted.delivery("reminded", "r-1", "reminder", "【催办】请于14:00前签收")  # two levels'
    planted.delivery("reminded", "r-2", "reminder", "【催办】请于14:00前签收")  # reminders
    acknowledged = ["twice", "escalated", "fired", "told", "reminded", "lost", "never-stored"]
    databases = await planted_in(planted, tmp_path)
    figures = await check(databases, acknowledged)
    assert figures == Figures(
        acknowledged=7,
        stored=6,
        assigned=5,
        scheduled=5,
        notified=5,
        escalated=1,
        lost=2,
        assigned_twice=1,
        duplicate_deadlines=1,
        duplicate_escalations=1,
        duplicate_notifications=1,
    )
    assert not figures.sound
    # Only what was acknowledged counts: another test's complaints are not this one's.
    one = await check(databases, ["escalated"])
    assert (one.acknowledged, one.lost, one.duplicates) == (1, 0, one.duplicate_escalations)
    assert one.duplicate_escalations == 1
