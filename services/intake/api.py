"""Intake's public HTTP API: submit a complaint, follow it."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Response, status
from pydantic import BaseModel
from sqlalchemy import select

from services.intake.domain import STATUS_LABELS, ComplaintIn
from services.intake.store import complaint_views, complaints, timeline
from services.intake.submission import IdempotencyConflict, Submissions, UnknownCategory
from yijian.bus.outbox import ServiceDatabase
from yijian.level import Level

_AWAITING_ACCEPT = {"assigned", "escalated", "reopened", "pending_dispatch"}
_OPEN = _AWAITING_ACCEPT | {"accepted", "replied"}


class SubmittedOut(BaseModel):
    id: str
    tracking_no: str
    status: str
    url: str


class OrgOut(BaseModel):
    code: str
    name: str


class DeadlinesOut(BaseModel):
    accept_by: datetime | None
    resolve_by: datetime | None


class TimelineEntry(BaseModel):
    at: datetime
    kind: str
    text: str


class ComplaintView(BaseModel):
    id: str
    tracking_no: str
    status: str
    status_label: str
    level: Level | None
    level_label: str | None
    assignee: OrgOut | None
    supervisor: OrgOut | None
    category: str | None
    urgency: str
    submitted_at: datetime
    deadlines: DeadlinesOut
    overdue: bool
    timeline: list[TimelineEntry]


def build_router(database: ServiceDatabase, submissions: Submissions) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["complaints"])

    @router.post("/complaints", status_code=status.HTTP_201_CREATED)
    async def submit_complaint(
        body: ComplaintIn,
        response: Response,
        idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
    ) -> SubmittedOut:
        """Take a complaint. A 201 means it is stored and will be routed."""
        try:
            receipt = await submissions.submit(body, idempotency_key)
        except UnknownCategory as error:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(error)) from error
        except IdempotencyConflict as error:
            raise HTTPException(status.HTTP_409_CONFLICT, str(error)) from error
        url = f"/api/v1/complaints/{receipt.complaint_id}"
        response.headers["Location"] = url
        if receipt.replayed:
            response.headers["Idempotent-Replayed"] = "true"
        return SubmittedOut(
            id=receipt.complaint_id, tracking_no=receipt.tracking_no, status="submitted", url=url
        )

    @router.get("/complaints/{complaint_id}")
    async def get_complaint(complaint_id: str) -> ComplaintView:
        """The citizen's view: where it is, who has it, by when, and what happened."""
        async with database.engine.connect() as connection:
            row = (
                await connection.execute(
                    select(complaints, complaint_views)
                    .join(complaint_views, complaint_views.c.complaint_id == complaints.c.id)
                    .where(complaints.c.id == complaint_id)
                )
            ).first()
            if row is None:
                raise HTTPException(status.HTTP_404_NOT_FOUND, "no complaint with this id")
            entries = (
                await connection.execute(
                    select(timeline.c.at, timeline.c.kind, timeline.c.text)
                    .where(timeline.c.complaint_id == complaint_id)
                    .order_by(timeline.c.at, timeline.c.id)
                )
            ).all()
        level = Level(row.level) if row.level else None
        current = row.deadline_clock == row.clock
        return ComplaintView(
            id=row.id,
            tracking_no=row.tracking_no,
            status=row.status,
            status_label=STATUS_LABELS.get(row.status, row.status),
            level=level,
            level_label=level.label if level else None,
            assignee=OrgOut(code=row.assignee_code, name=row.assignee_name)
            if row.assignee_code
            else None,
            supervisor=OrgOut(code=row.supervisor_code, name=row.supervisor_name)
            if row.supervisor_code
            else None,
            category=row.category,
            urgency=row.urgency,
            submitted_at=row.submitted_at,
            deadlines=DeadlinesOut(
                accept_by=row.accept_due_at if current and row.status in _AWAITING_ACCEPT else None,
                resolve_by=row.resolve_due_at if current and row.status in _OPEN else None,
            ),
            overdue=row.overdue,
            timeline=[TimelineEntry(at=e.at, kind=e.kind, text=e.text) for e in entries],
        )

    return router
