"""The county dashboard: the figures as JSON and CSV for staff, and the page that draws them.

Staff see the figures of their own jurisdiction: the county platform all of it, a township
its villages, a village itself. The page itself holds no data; it fetches the JSON with the
user's credentials, so it can be served to anyone.
"""

# No ``from __future__ import annotations`` here: FastAPI must resolve the route signatures'
# Annotated dependencies, some of which are local to ``build_dashboard_router``.
from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, status
from fastapi.responses import Response

from services.routing.dashboard_csv import figures_csv, filename, series_csv
from services.routing.dashboard_scope import Period, Scope
from services.routing.dashboard_series import series
from services.routing.sessions import StaffCheck
from services.routing.stats import figures
from services.routing.workbench import page_response
from yijian.auth import StaffUser
from yijian.bus.outbox import ServiceDatabase
from yijian.clock import Clock
from yijian.db import reading
from yijian.jurisdiction import Jurisdiction, OrgKind

CSV: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {}}, "description": "UTF-8 with a byte-order mark"}
}


def build_dashboard_router(
    database: ServiceDatabase,
    jurisdiction: Jurisdiction,
    clock: Clock,
    current_staff: StaffCheck,
) -> APIRouter:
    router = APIRouter()
    Staff = Annotated[StaffUser, Depends(current_staff)]

    def scope_for(staff: StaffUser, org: str | None) -> Scope:
        """The asked-for org if the user's jurisdiction covers it; the user's own by default."""
        own = jurisdiction.get(staff.org_code)
        if own is None or own.kind == OrgKind.GRID:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, "your sign-in names no village, township or county"
            )
        try:
            scope = Scope.of(jurisdiction, org or own.code)
        except ValueError as error:
            raise HTTPException(422, str(error)) from error
        if not jurisdiction.contains(own.code, scope.org.code):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, f"{own.name} may not see the figures of {scope.org.name}"
            )
        return scope

    def period_of(since: datetime | None, until: datetime | None) -> Period:
        try:
            return Period.of(since, until, clock.now())
        except ValueError as error:
            raise HTTPException(422, str(error)) from error

    def asked(
        staff: Staff,
        since: Annotated[
            datetime | None,
            Query(alias="from", description="start, with a timezone; default 30 days ago"),
        ] = None,
        until: Annotated[
            datetime | None, Query(alias="to", description="end (exclusive); default now")
        ] = None,
        org: Annotated[
            str | None,
            Query(
                pattern=r"^\d{6}(\d{3})?(\d{3})?$",
                description="a township or village inside your jurisdiction; default your own",
            ),
        ] = None,
    ) -> tuple[Scope, Period]:
        return scope_for(staff, org), period_of(since, until)

    Asked = Annotated[tuple[Scope, Period], Depends(asked)]

    @router.get("/api/v1/stats", tags=["figures"])
    async def stats(asked: Asked) -> dict[str, Any]:
        """Per-level figures, per township (or village), per day, and satisfaction.

        The period selects the complaints that reached a level inside it and shows where
        they stand now; the daily ``series`` counts each event on the Beijing day it
        happened. A level's on-time rate is the share of its resolutions within its own
        deadlines; a place's or a day's, the share of resolved complaints that missed no
        deadline at all. Satisfaction counts the citizens' latest ratings (满意 and 基本满意
        count as satisfied).
        """
        scope, period = asked
        async with reading(database.engine) as connection:
            counted = await figures(connection, scope, period)
            days = await series(connection, scope, period)
        return {
            "period": {
                "from": period.since.isoformat(),
                "to": period.until.isoformat(),
                "days": len(days),
            },
            "scope": {
                "code": scope.org.code,
                "name": scope.org.name,
                "kind": scope.org.kind.value,
            },
            **asdict(counted),
            "series": [asdict(day) for day in days],
        }

    @router.get("/api/v1/stats.csv", tags=["figures"], response_class=Response, responses=CSV)
    async def stats_csv(asked: Asked) -> Response:
        """The figures per place and level, with totals, for Excel (UTF-8 with BOM)."""
        scope, period = asked
        async with reading(database.engine) as connection:
            counted = await figures(connection, scope, period)
        return _csv(figures_csv(scope, counted), filename("stats", scope, period))

    @router.get(
        "/api/v1/stats/series.csv", tags=["figures"], response_class=Response, responses=CSV
    )
    async def series_as_csv(asked: Asked) -> Response:
        """The figures per Beijing day, for Excel (UTF-8 with BOM)."""
        scope, period = asked
        async with reading(database.engine) as connection:
            days = await series(connection, scope, period)
        return _csv(series_csv(days), filename("series", scope, period))

    @router.get("/staff/dashboard", include_in_schema=False)
    async def page() -> Response:
        # Same security headers as the workbench; the scripts and styles come from its
        # /staff/assets/ route like the workbench's own.
        return page_response("dashboard.html")

    return router


def _csv(body: bytes, name: str) -> Response:
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
        },
    )
