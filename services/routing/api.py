"""Routing's HTTP API: the jurisdiction tree and staff actions on a case.

The figures (/api/v1/stats) live with the dashboard, in dashboard.py.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, status
from pydantic import BaseModel, ConfigDict, Field, field_validator

from services.routing.access import org_ref
from services.routing.audit import Actor, AuditLog, request_id
from services.routing.casework import Casework
from services.routing.domain import Action, Case, Refused
from services.routing.sessions import StaffCheck
from yijian.auth import StaffUser
from yijian.bus.outbox import ServiceDatabase
from yijian.contracts.events import Org
from yijian.jurisdiction import Jurisdiction
from yijian.text import clean_free_text


class _Text(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="before")
    @classmethod
    def _strip(cls, value: object) -> object:
        # Blank stays "" (not None) so min_length refuses it with the field's own message.
        return (clean_free_text(value) or "") if isinstance(value, str) else value


class NoteIn(_Text):
    note: str | None = Field(default=None, max_length=1000)


class ReplyIn(_Text):
    message: str = Field(min_length=1, max_length=2000)


class ReturnIn(_Text):
    reason: str = Field(min_length=2, max_length=500, description="why it is not yours")


class DispatchIn(_Text):
    org_code: str = Field(pattern=r"^\d{9}(\d{3})?$", description="a township or village")
    note: str | None = Field(default=None, max_length=1000)


class VisitIn(_Text):
    note: str = Field(min_length=1, max_length=2000, description="what the citizen said")
    satisfied: bool | None = Field(default=None, description="was the citizen satisfied")


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
    visited: bool

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
            visited=case.visited,
        )


def build_router(
    database: ServiceDatabase,
    casework: Casework,
    jurisdiction: Jurisdiction,
    staff_check: StaffCheck,
    audit: AuditLog,
) -> APIRouter:
    router = APIRouter(prefix="/api/v1")
    Staff = Annotated[StaffUser, Depends(staff_check)]

    def actor_of(staff: StaffUser) -> Org:
        org = org_ref(jurisdiction, staff.org_code)
        if org is None:
            raise HTTPException(status.HTTP_403_FORBIDDEN, "your token names no known org")
        return org

    async def perform(
        complaint_id: str,
        action: Action,
        staff: StaffUser,
        request: Request,
        note: str | None = None,
        target_code: str | None = None,
        satisfied: bool | None = None,
    ) -> CaseOut:
        actor = actor_of(staff)
        who = Actor.of(staff)
        request_ref = request_id(request)
        try:
            async with database.transaction() as tx:
                case = await casework.act(
                    tx,
                    complaint_id,
                    action,
                    actor,
                    staff.user,
                    note=note,
                    target_code=target_code,
                    satisfied=satisfied,
                )
                # Inside the transaction: the log says "ok" only if the change committed.
                await audit.append(
                    tx.connection, who, action.value, "ok", request_ref, complaint_id
                )
        except Refused as refusal:
            await audit.record(
                who, action.value, f"refused:{refusal.status}", request_ref, complaint_id
            )
            raise HTTPException(refusal.status, refusal.reason) from refusal
        return CaseOut.of(case)

    @router.get("/jurisdictions", tags=["jurisdiction"])
    async def jurisdiction_tree() -> dict[str, Any]:
        """County → townships → villages → grids, with codes and names (no geometry)."""
        return jurisdiction.tree()

    @router.post("/complaints/{complaint_id}/accept", tags=["casework"])
    async def accept(
        complaint_id: str, staff: Staff, request: Request, body: NoteIn | None = None
    ) -> CaseOut:
        """签收: take responsibility for the complaint (or for its 督办)."""
        note = body.note if body else None
        return await perform(complaint_id, Action.ACCEPT, staff, request, note)

    @router.post("/complaints/{complaint_id}/reply", tags=["casework"])
    async def reply(complaint_id: str, body: ReplyIn, staff: Staff, request: Request) -> CaseOut:
        """答复: tell the citizen what is being done."""
        return await perform(complaint_id, Action.REPLY, staff, request, body.message)

    @router.post("/complaints/{complaint_id}/resolve", tags=["casework"])
    async def resolve(complaint_id: str, body: ReplyIn, staff: Staff, request: Request) -> CaseOut:
        """办结: the matter is dealt with; the message says how."""
        return await perform(complaint_id, Action.RESOLVE, staff, request, body.message)

    @router.post("/complaints/{complaint_id}/return", tags=["casework"])
    async def give_back(
        complaint_id: str, body: ReturnIn, staff: Staff, request: Request
    ) -> CaseOut:
        """退回: not ours. The level above decides where it goes."""
        return await perform(complaint_id, Action.RETURN, staff, request, body.reason)

    @router.post("/complaints/{complaint_id}/dispatch", tags=["casework"])
    async def dispatch(
        complaint_id: str, body: DispatchIn, staff: Staff, request: Request
    ) -> CaseOut:
        """分派: send it down to a township or village in your jurisdiction, new deadlines."""
        return await perform(
            complaint_id, Action.DISPATCH, staff, request, body.note, body.org_code
        )

    @router.post("/complaints/{complaint_id}/visit", tags=["casework"])
    async def visit(complaint_id: str, body: VisitIn, staff: Staff, request: Request) -> CaseOut:
        """回访: record what the citizen said after the resolution; needed before 归档."""
        return await perform(
            complaint_id, Action.VISIT, staff, request, body.note, satisfied=body.satisfied
        )

    @router.post("/complaints/{complaint_id}/close", tags=["casework"])
    async def close(
        complaint_id: str, staff: Staff, request: Request, body: NoteIn | None = None
    ) -> CaseOut:
        """归档: archive a resolved complaint, after its return visit (回访) is recorded."""
        note = body.note if body else None
        return await perform(complaint_id, Action.CLOSE, staff, request, note)

    return router
