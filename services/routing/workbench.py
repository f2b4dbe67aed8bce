"""The staff workbench: the ``/staff`` page, its inbox and case views, and contact reveals.

The page is plain HTML, CSS and JavaScript modules from ``web/``, served under the kernel's
Content Security Policy, which allows no inline script and nothing from another origin. Other staff
pages (the county dashboard) reuse ``page_response`` and the session module
``/staff/assets/session.js``.
"""

import re
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.responses import FileResponse, Response
from sqlalchemy import select
from sqlalchemy.engine import Row

from services.routing.access import available_actions, dispatch_targets, org_ref
from services.routing.audit import Actor, AuditLog, request_id
from services.routing.inbox import View, inbox_page, summarize
from services.routing.intake_client import IntakeLink, Unavailable
from services.routing.privacy import (
    may_reveal_contact,
    privacy_notice,
    revealed,
    screened,
    withheld_from,
)
from services.routing.repository import case_from_row
from services.routing.sessions import StaffCheck
from services.routing.store import case_actions, cases
from yijian.auth import StaffUser
from yijian.bus.outbox import ServiceDatabase
from yijian.contracts.events import CaseStatus, Org
from yijian.db import reading
from yijian.jurisdiction import Jurisdiction

WEB = Path(__file__).parent / "web"
_PHOTO_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_ASSET = re.compile(r"^[a-z0-9-]{1,60}\.(js|css|svg|png)$")
_MEDIA_TYPES = {
    "js": "text/javascript; charset=utf-8",
    "css": "text/css; charset=utf-8",
    "svg": "image/svg+xml",
    "png": "image/png",
}


def page_response(name: str) -> Response:
    """A page from ``web/``, never cached (the kernel adds the security headers)."""
    response = FileResponse(WEB / name, media_type="text/html; charset=utf-8")
    response.headers["Cache-Control"] = "no-store"
    return response


def _org_name(jurisdiction: Jurisdiction, code: str | None) -> str | None:
    org = jurisdiction.get(code) if code else None
    return org.name if org else None


def build_workbench(
    database: ServiceDatabase,
    jurisdiction: Jurisdiction,
    staff_check: StaffCheck,
    audit: AuditLog,
    intake: IntakeLink,
) -> APIRouter:
    router = APIRouter()
    Staff = Annotated[StaffUser, Depends(staff_check)]

    def actor_of(staff: StaffUser) -> Org:
        org = org_ref(jurisdiction, staff.org_code)
        if org is None:
            raise HTTPException(status.HTTP_403_FORBIDDEN, "your token names no known org")
        return org

    async def visible_case(complaint_id: str, actor: Org) -> Row[tuple[object, ...]]:
        async with reading(database.engine) as connection:
            row = (
                await connection.execute(select(cases).where(cases.c.complaint_id == complaint_id))
            ).first()
        # Same answer for "missing" and "not yours": ids are not an oracle.
        if row is None or not jurisdiction.contains(actor.code, row.assignee_code):
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no complaint with this id")
        return row

    @router.get("/staff", include_in_schema=False)
    async def workbench_page() -> Response:
        return page_response("staff.html")

    @router.get("/staff/assets/{name}", include_in_schema=False)
    async def asset(name: str) -> Response:
        path = WEB / name
        if not _ASSET.match(name) or not path.is_file():
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no such file")
        response = FileResponse(path, media_type=_MEDIA_TYPES[name.rsplit(".", 1)[1]])
        response.headers["Cache-Control"] = "no-cache"
        return response

    @router.get("/api/v1/cases", tags=["casework"])
    async def inbox(
        staff: Staff,
        view: View = "assigned",
        status_in: Annotated[list[CaseStatus] | None, Query(alias="status")] = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
    ) -> dict[str, Any]:
        """待办 (``view=assigned``): cases assigned to your org, nearest deadline first.

        督办 (``view=supervised``): cases below your org that missed a deadline and are
        under supervision. ``status`` filters (repeatable); each case carries the
        deadline in force and its colour (green > half the time left, amber, red overdue).
        """
        actor = actor_of(staff)
        now = database.clock.now()
        async with reading(database.engine) as connection:
            page = await inbox_page(
                connection, jurisdiction, actor.code, view, status_in, limit, offset, now
            )
        return {
            "view": view,
            "now": now.isoformat(),
            "org": actor.model_dump(mode="json"),
            "total": page.total,
            "limit": limit,
            "offset": offset,
            "items": [item.model_dump(mode="json") for item in page.items],
        }

    @router.get("/api/v1/cases/{complaint_id}", tags=["casework"])
    async def case_detail(complaint_id: str, staff: Staff) -> dict[str, Any]:
        """The case, its history, what you may do next, and what the citizen sent.

        The citizen's contact comes masked; ``POST …/contact`` reveals it to roles allowed.
        When the citizen asked that their village not learn who they are, staff at village
        level get no contact and no address at all, and ``privacy_notice`` says why.
        """
        actor = actor_of(staff)
        row = await visible_case(complaint_id, actor)
        now = database.clock.now()
        case = case_from_row(row)
        async with reading(database.engine) as connection:
            history = await connection.execute(
                select(case_actions)
                .where(case_actions.c.complaint_id == complaint_id)
                .order_by(case_actions.c.id)
            )
            actions = [
                {
                    "at": action.at.isoformat(),
                    "action": action.action,
                    "actor_org": action.actor_org,
                    "actor_org_name": _org_name(jurisdiction, action.actor_org),
                    "actor_user": action.actor_user,
                    "from_status": action.from_status,
                    "to_status": action.to_status,
                    "note": action.note,
                }
                for action in history
            ]
        found = await intake.submission(complaint_id)
        submission = None if isinstance(found, Unavailable) else found
        shown = screened(submission, actor.level) if submission else None
        if shown is not None:
            for photo in shown["photos"]:
                photo["url"] = f"/api/v1/cases/{complaint_id}/photos/{photo['id']}"
        return {
            "now": now.isoformat(),
            "case": summarize(row, now).model_dump(mode="json"),
            "actions": actions,
            "available_actions": available_actions(jurisdiction, actor, case),
            "dispatch_targets": [
                org.model_dump(mode="json") for org in dispatch_targets(jurisdiction, actor, case)
            ],
            "visit": {"at": row.visited_at.isoformat(), "satisfied": row.visit_satisfied}
            if row.visited_at
            else None,
            "place": {
                "township": _org_name(jurisdiction, row.township_code),
                "village": _org_name(jurisdiction, row.village_code),
                "grid": _org_name(jurisdiction, row.grid_code),
            },
            "submission": shown,
            "submission_notice": found.notice if isinstance(found, Unavailable) else None,
            "privacy_notice": privacy_notice(submission, actor.level) if submission else None,
            "can_reveal_contact": shown is not None
            and (shown["contact"] is not None or shown["address_hidden"])
            and may_reveal_contact(staff.role),
        }

    @router.get("/api/v1/cases/{complaint_id}/photos/{photo_id}", tags=["casework"])
    async def case_photo(complaint_id: str, photo_id: str, staff: Staff) -> Response:
        """A photo the citizen attached, for staff who may see the case."""
        actor = actor_of(staff)
        await visible_case(complaint_id, actor)
        if not _PHOTO_ID.match(photo_id):
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no such photo")
        found = await intake.photo(complaint_id, photo_id)
        if found is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no such photo")
        if isinstance(found, Unavailable):
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, found.notice)
        return Response(
            found.content,
            media_type=found.content_type,
            headers={
                "Cache-Control": "private, max-age=3600",
                "X-Content-Type-Options": "nosniff",
                "Content-Security-Policy": "default-src 'none'; sandbox",
            },
        )

    @router.post("/api/v1/cases/{complaint_id}/contact", tags=["casework"])
    async def reveal_contact(complaint_id: str, staff: Staff, request: Request) -> dict[str, Any]:
        """The citizen's name, phone and address as given: supervisors and admins; audited.

        403 for staff at village level when the citizen asked that their village not learn
        who they are, whatever their role.
        """
        actor = actor_of(staff)
        request_ref = request_id(request)
        try:
            await visible_case(complaint_id, actor)
        except HTTPException:
            await audit.record(
                Actor.of(staff), "reveal_contact", "refused:404", request_ref, complaint_id
            )
            raise
        if not may_reveal_contact(staff.role):
            await audit.record(
                Actor.of(staff), "reveal_contact", "refused:403", request_ref, complaint_id
            )
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, "only supervisors and admins may see contact details"
            )
        found = await intake.submission(complaint_id)
        if isinstance(found, Unavailable):
            await audit.record(
                Actor.of(staff), "reveal_contact", "unavailable", request_ref, complaint_id
            )
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, found.notice)
        if withheld_from(found, actor.level):
            await audit.record(
                Actor.of(staff), "reveal_contact", "refused:403:withheld", request_ref, complaint_id
            )
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                "the citizen asked that their village (community) not learn who they are; "
                "only the township or the county platform may see the contact",
            )
        await audit.record(Actor.of(staff), "reveal_contact", "ok", request_ref, complaint_id)
        return revealed(found)

    @router.get("/api/v1/staff/audit", tags=["staff session"])
    async def audit_entries(
        staff: Staff,
        complaint_id: Annotated[str | None, Query(max_length=32)] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    ) -> list[dict[str, object]]:
        """The audit log, newest first: for the county platform's administrators."""
        if staff.role != "admin" or staff.org_code != jurisdiction.county.code:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, "only county platform administrators read the audit log"
            )
        return await audit.entries(complaint_id, limit)

    return router
