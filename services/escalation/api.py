"""Escalation's ops API: what deadlines a complaint has, and whether the firing loop keeps up.

Read-only and free of personal data (rows hold codes, levels and instants only). Who may call
it is the composition root's decision, as for every staff route.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from services.escalation import store
from services.escalation.domain import DeadlineKind, DeadlineState
from yijian.bus.outbox import ServiceDatabase
from yijian.contracts.events import Stage
from yijian.db import reading
from yijian.level import Level

# One complaint gains at most a few rows per clock plus one per overdue repeat, so this bounds
# the answer without cutting anything a real complaint has.
_MAX_ROWS = 1000


class DeadlineOut(BaseModel):
    id: int
    complaint_id: str
    clock: int
    level: Level
    stage: Stage
    kind: DeadlineKind
    state: DeadlineState
    fire_at: datetime
    due_at: datetime
    fired_at: datetime | None
    category: str | None
    urgency: str
    correlation_id: str
    created_at: datetime


class PendingCount(BaseModel):
    level: Level
    stage: Stage
    count: int


class SummaryOut(BaseModel):
    as_of: datetime
    pending: list[PendingCount]
    pending_total: int
    late: int = Field(
        description="Pending rows already past their fire time; more than a few means the "
        "firing loop has stalled."
    )
    next_fire_at: datetime | None
    fired_last_hour: int


def build_router(database: ServiceDatabase) -> APIRouter:
    router = APIRouter(prefix="/api/v1/escalation", tags=["escalation"])

    @router.get("/deadlines")
    async def list_deadlines(
        complaint_id: Annotated[str, Query(min_length=1, max_length=64)],
    ) -> list[DeadlineOut]:
        """Every deadline row of one complaint, in firing order: pending, fired and cancelled."""
        async with reading(database.engine) as connection:
            rows = await store.rows_of(connection, complaint_id, _MAX_ROWS)
        return [
            DeadlineOut(
                id=row.id,
                complaint_id=row.complaint_id,
                clock=row.clock,
                level=Level(row.level),
                stage=Stage(row.stage),
                kind=DeadlineKind(row.kind),
                state=DeadlineState(row.state),
                fire_at=row.fire_at,
                due_at=row.due_at,
                fired_at=row.fired_at,
                category=row.category,
                urgency=row.urgency,
                correlation_id=row.correlation_id,
                created_at=row.created_at,
            )
            for row in rows
        ]

    @router.get("/summary")
    async def summary() -> SummaryOut:
        """Pending deadlines by level and stage, the next to fire, and recent firing."""
        now = database.clock.now()
        async with reading(database.engine) as connection:
            counts = await store.pending_counts(connection)
            late = await store.count_pending_before(connection, now)
            upcoming = await store.next_fire_at(connection)
            fired = await store.count_fired_since(connection, now - timedelta(hours=1))
        pending = [
            PendingCount(level=Level(row.level), stage=Stage(row.stage), count=row.count)
            for row in counts
        ]
        return SummaryOut(
            as_of=now,
            pending=pending,
            pending_total=sum(item.count for item in pending),
            late=late,
            next_fire_at=upcoming,
            fired_last_hour=fired,
        )

    return router
