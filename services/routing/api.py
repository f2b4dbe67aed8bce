"""Routing's HTTP API: the jurisdiction tree, staff actions on a case, and the figures."""

from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, status
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import or_, select

from services.routing.access import org_ref
from services.routing.casework import Casework
from services.routing.domain import Action, Case, Refused
from services.routing.repository import case_from_row
from services.routing.stats import figures, org_filter
from services.routing.store import case_actions, cases
from yijian.auth import StaffTokens, StaffUser
from yijian.bus.outbox import ServiceDatabase
from yijian.contracts.events import Org
from yijian.jurisdiction import Jurisdiction


class _Text(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="before")
    @classmethod
    def _strip(cls, value: object) -> object:
        return value.strip() if isinstance(value, str) else value


class NoteIn(_Text):
    note: str | None = Field(default=None, max_length=1000)


class ReplyIn(_Text):
    message: str = Field(min_length=1, max_length=2000)


class ReturnIn(_Text):
    reason: str = Field(min_length=2, max_length=500, description="why it is not yours")


class DispatchIn(_Text):
    org_code: str = Field(pattern=r"^\d{9}(\d{3})?$", description="a township or village")
    note: str | None = Field(default=None, max_length=1000)


class CaseOut(BaseModel):
    complaint_id: str
    tracking_no: str
    status: str
    level: str
    assignee: Org
    supervisor: Org | None
    category: str | None
    urgency: str
    returns: int
    reopens: int
    overdue: bool

    @classmethod
    def of(cls, case: Case) -> "CaseOut":
        return cls(
            complaint_id=case.complaint_id,
            tracking_no=case.tracking_no,
            status=case.status.value,
            level=case.level.value,
            assignee=case.assignee,
            supervisor=case.supervisor,
            category=case.category,
            urgency=case.urgency,
            returns=case.returns,
            reopens=case.reopens,
            overdue=case.overdue,
        )


def build_router(
    database: ServiceDatabase,
    casework: Casework,
    jurisdiction: Jurisdiction,
    tokens: StaffTokens,
) -> APIRouter:
    router = APIRouter(prefix="/api/v1")
    Staff = Annotated[StaffUser, Depends(tokens.dependency())]

    def actor_of(staff: StaffUser) -> Org:
        org = org_ref(jurisdiction, staff.org_code)
        if org is None:
            raise HTTPException(status.HTTP_403_FORBIDDEN, "your token names no known org")
        return org

    async def perform(
        complaint_id: str,
        action: Action,
        staff: StaffUser,
        note: str | None = None,
        target_code: str | None = None,
    ) -> CaseOut:
        actor = actor_of(staff)
        try:
            async with database.transaction() as tx:
                case = await casework.act(
                    tx, complaint_id, action, actor, staff.user, note=note, target_code=target_code
                )
        except Refused as refusal:
            raise HTTPException(refusal.status, refusal.reason) from refusal
        return CaseOut.of(case)

    @router.get("/jurisdictions", tags=["jurisdiction"])
    async def jurisdiction_tree() -> dict[str, Any]:
        """County → townships → villages → grids, with codes and names (no geometry)."""
        return jurisdiction.tree()

    @router.post("/complaints/{complaint_id}/accept", tags=["casework"])
    async def accept(complaint_id: str, staff: Staff, body: NoteIn | None = None) -> CaseOut:
        """签收: take responsibility for the complaint (or for its 督办)."""
        return await perform(complaint_id, Action.ACCEPT, staff, body.note if body else None)

    @router.post("/complaints/{complaint_id}/reply", tags=["casework"])
    async def reply(complaint_id: str, body: ReplyIn, staff: Staff) -> CaseOut:
        """答复: tell the citizen what is being done."""
        return await perform(complaint_id, Action.REPLY, staff, body.message)

    @router.post("/complaints/{complaint_id}/resolve", tags=["casework"])
    async def resolve(complaint_id: str, body: ReplyIn, staff: Staff) -> CaseOut:
        """办结: the matter is dealt with; the message says how."""
        return await perform(complaint_id, Action.RESOLVE, staff, body.message)

    @router.post("/complaints/{complaint_id}/return", tags=["casework"])
    async def give_back(complaint_id: str, body: ReturnIn, staff: Staff) -> CaseOut:
        """退回: not ours. The level above decides where it goes."""
        return await perform(complaint_id, Action.RETURN, staff, body.reason)

    @router.post("/complaints/{complaint_id}/dispatch", tags=["casework"])
    async def dispatch(complaint_id: str, body: DispatchIn, staff: Staff) -> CaseOut:
        """分派: send it down to a township or village in your jurisdiction, new deadlines."""
        return await perform(complaint_id, Action.DISPATCH, staff, body.note, body.org_code)

    @router.post("/complaints/{complaint_id}/close", tags=["casework"])
    async def close(complaint_id: str, staff: Staff, body: NoteIn | None = None) -> CaseOut:
        """归档: after the return visit (回访), archive a resolved complaint."""
        return await perform(complaint_id, Action.CLOSE, staff, body.note if body else None)

    @router.get("/cases", tags=["casework"])
    async def inbox(
        staff: Staff, limit: Annotated[int, Query(ge=1, le=500)] = 100
    ) -> list[CaseOut]:
        """Open cases the user's org is assigned or supervises, oldest change first."""
        actor = actor_of(staff)
        async with database.engine.connect() as connection:
            rows = await connection.execute(
                select(cases)
                .where(
                    or_(cases.c.assignee_code == actor.code, cases.c.supervisor_code == actor.code),
                    cases.c.status.not_in(["resolved", "closed"]),
                )
                .order_by(cases.c.updated_at)
                .limit(limit)
            )
            return [CaseOut.of(case_from_row(row)) for row in rows]

    @router.get("/cases/{complaint_id}", tags=["casework"])
    async def case_detail(complaint_id: str, staff: Staff) -> dict[str, Any]:
        """The case with its action log, for staff whose jurisdiction covers it."""
        actor = actor_of(staff)
        async with database.engine.connect() as connection:
            row = (
                await connection.execute(select(cases).where(cases.c.complaint_id == complaint_id))
            ).first()
            # Same answer for "missing" and "not yours": ids are not an oracle.
            if row is None or not jurisdiction.contains(actor.code, row.assignee_code):
                raise HTTPException(status.HTTP_404_NOT_FOUND, "no complaint with this id")
            actions = await connection.execute(
                select(case_actions)
                .where(case_actions.c.complaint_id == complaint_id)
                .order_by(case_actions.c.id)
            )
            return {
                "case": CaseOut.of(case_from_row(row)).model_dump(mode="json"),
                "actions": [
                    {
                        "at": action.at.isoformat(),
                        "action": action.action,
                        "actor_org": action.actor_org,
                        "from_status": action.from_status,
                        "to_status": action.to_status,
                        "note": action.note,
                    }
                    for action in actions
                ],
            }

    @router.get("/stats", tags=["figures"])
    async def stats(
        since: Annotated[datetime | None, Query(alias="from")] = None,
        until: Annotated[datetime | None, Query(alias="to")] = None,
        org: Annotated[str | None, Query(pattern=r"^\d{6}(\d{3})?(\d{3})?$")] = None,
    ) -> dict[str, Any]:
        """Per-level figures for a period (by when complaints reached a level) and org."""
        for bound in (since, until):
            if bound is not None and bound.tzinfo is None:
                raise HTTPException(422, "from/to need a timezone, e.g. 2026-03-01T00:00:00+08:00")
        try:
            where_org = org_filter(jurisdiction, org)
        except ValueError as error:
            raise HTTPException(422, str(error)) from error
        async with database.engine.connect() as connection:
            result = await figures(connection, where_org, since, until)
        return asdict(result)

    return router
