"""Intake's public HTTP API: submit a complaint, follow it."""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Header, HTTPException, Request, Response, status
from pydantic import BaseModel, Field
from sqlalchemy import desc, select

from services.intake.citizen_access import NOT_FOUND, CitizenAccess
from services.intake.citizen_api import PhotoOut
from services.intake.domain import STATUS_LABELS, ComplaintIn
from services.intake.photos import Photos
from services.intake.rating import RATING_LABELS
from services.intake.store import complaint_views, complaints, ratings, timeline
from services.intake.submission import (
    ChannelRefused,
    IdempotencyConflict,
    Submissions,
    UnknownCategory,
)
from services.intake.submission_limits import SubmissionLimited
from yijian.bus.outbox import ServiceDatabase
from yijian.db import reading
from yijian.level import Level

_AWAITING_ACCEPT = {"assigned", "escalated", "reopened", "pending_dispatch"}
_OPEN = _AWAITING_ACCEPT | {"accepted", "replied"}


class SubmittedOut(BaseModel):
    id: str
    tracking_no: str
    status: str
    url: str
    citizen_token: str = Field(
        description="opens this complaint for its citizen: send it as `Authorization: Bearer "
        "…` or `X-Citizen-Token: …` to read it, add photos and rate it; keep it on the device"
    )


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
    photos: list[PhotoOut] = []
    rating: str | None = Field(default=None, description="the latest rating, if any")
    rating_label: str | None = None
    can_rate: bool = Field(default=False, description="resolved, and this resolution unrated")


def build_router(
    database: ServiceDatabase, submissions: Submissions, access: CitizenAccess, photos: Photos
) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["complaints"])
    OwnComplaint = Annotated[str, Depends(access.dependency())]

    @router.post("/complaints", status_code=status.HTTP_201_CREATED, responses={429: {}})
    async def submit_complaint(
        body: ComplaintIn,
        request: Request,
        response: Response,
        idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
    ) -> SubmittedOut:
        """Take a complaint. A 201 means it is stored and will be routed.

        429 with Retry-After and the reason when the sender filed too many lately (per
        network address, phone number and WeChat user; see the README's settings).

        From the WeChat mini-program: send `Authorization: Bearer <session>` (from
        `POST /api/v1/wechat/session`) and `"channel": "wechat"`, and the complaint joins
        that user's "my complaints".
        """
        try:
            vouched = await submissions.vouched(request.headers, body)
        except ChannelRefused as error:
            challenge = {"WWW-Authenticate": "Bearer"} if error.status == 401 else None
            raise HTTPException(error.status, error.reason, headers=challenge) from error
        client_ip = request.client.host if request.client else None
        try:
            receipt = await submissions.submit(body, idempotency_key, vouched, client_ip)
        except SubmissionLimited as error:
            raise HTTPException(
                status.HTTP_429_TOO_MANY_REQUESTS,
                error.reason,
                headers={"Retry-After": str(error.retry_after)},
            ) from error
        except UnknownCategory as error:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(error)) from error
        except IdempotencyConflict as error:
            raise HTTPException(status.HTTP_409_CONFLICT, str(error)) from error
        url = f"/api/v1/complaints/{receipt.complaint_id}"
        response.headers["Location"] = url
        if receipt.replayed:
            response.headers["Idempotent-Replayed"] = "true"
        return SubmittedOut(
            id=receipt.complaint_id,
            tracking_no=receipt.tracking_no,
            status="submitted",
            url=url,
            citizen_token=access.tokens.issue(receipt.complaint_id),
        )

    @router.get("/complaints/{complaint_id}")
    async def get_complaint(complaint_id: OwnComplaint) -> ComplaintView:
        """The citizen's view: where it is, who has it, by when, and what happened.

        Needs the complaint's citizen token (or another credential a channel added); without
        one the answer is 404, the same as for a complaint that does not exist.
        """
        async with reading(database.engine) as connection:
            row = (
                await connection.execute(
                    select(complaints, complaint_views)
                    .join(complaint_views, complaint_views.c.complaint_id == complaints.c.id)
                    .where(complaints.c.id == complaint_id)
                )
            ).first()
            if row is None:
                raise HTTPException(status.HTTP_404_NOT_FOUND, NOT_FOUND)
            entries = (
                await connection.execute(
                    select(timeline.c.at, timeline.c.kind, timeline.c.text)
                    .where(timeline.c.complaint_id == complaint_id)
                    .order_by(timeline.c.at, timeline.c.id)
                )
            ).all()
            verdicts = (
                await connection.execute(
                    select(ratings.c.resolution, ratings.c.rating)
                    .where(ratings.c.complaint_id == complaint_id)
                    .order_by(desc(ratings.c.rated_at))
                )
            ).all()
            attached = await photos.of(connection, complaint_id)
        level = Level(row.level) if row.level else None
        latest = verdicts[0].rating if verdicts else None
        rated_now = any(verdict.resolution == row.clock for verdict in verdicts)
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
            photos=[PhotoOut.of(photo) for photo in attached],
            rating=latest,
            rating_label=RATING_LABELS.get(latest) if latest else None,
            can_rate=row.status == "resolved" and not rated_now,
        )

    return router
