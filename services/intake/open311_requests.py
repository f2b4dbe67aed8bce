"""Open311 service requests: complaints as GeoReport v2 requests (the form is open311_form).

GET requests is public in GeoReport v2, so a listed request carries only what anyone may
read: the category, who handles it, by when, and a point rounded to about 1 km. The
citizen's own words, address and contact details never appear (the words may name people);
they stay with the complaint for the staff who handle it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, select

from services.intake.domain import STATUS_LABELS
from services.intake.open311_catalog import Catalog
from services.intake.open311_format import BEIJING, Document, Open311Error, w3_datetime
from services.intake.store import complaint_views, complaints
from yijian.level import Level

CLOSED = frozenset({"resolved", "closed"})
_AWAITING_ACCEPT = frozenset({"assigned", "escalated", "reopened", "pending_dispatch"})
DEFAULT_SPAN = timedelta(days=90)
MAX_RESULTS = 1000
MAX_IDS = 200


@dataclass(frozen=True)
class RequestQuery:
    """GET requests' filters. ``ids`` overrides every other filter, as the spec says."""

    ids: list[str] | None = None
    categories: list[str] | None = None
    start: datetime | None = None
    end: datetime | None = None
    statuses: frozenset[str] | None = None  # {"open", "closed"}
    page: int = 1
    page_size: int = MAX_RESULTS


def parse_query(params: Mapping[str, str], catalog: Catalog, now: datetime) -> RequestQuery:
    if ids := _list(params.get("service_request_id")):
        if len(ids) > MAX_IDS:
            raise Open311Error(400, f"at most {MAX_IDS} service_request_id values at once")
        return RequestQuery(ids=ids)
    categories = None
    if codes := _list(params.get("service_code")):
        try:
            categories = catalog.categories_of(codes)
        except KeyError as error:
            raise Open311Error(400, f"unknown service_code: {error.args[0][:80]}") from None
    statuses = None
    if wanted := _list(params.get("status")):
        if not set(wanted) <= {"open", "closed"}:
            raise Open311Error(400, "status must be open, closed, or both comma-separated")
        statuses = frozenset(wanted)
    start = _date(params.get("start_date"), "start_date")
    end = _date(params.get("end_date"), "end_date")
    # "A span of 90 days or the first 1000 requests, whichever is smallest."
    if end is None:
        end = now if start is None else max(now, start)
    if start is None:
        start = end - DEFAULT_SPAN
    if start > end:
        raise Open311Error(400, "start_date is after end_date")
    return RequestQuery(
        categories=categories,
        start=start,
        end=end,
        statuses=statuses,
        page=_count(params.get("page"), "page", 1, 1_000_000, 1),
        page_size=_count(params.get("page_size"), "page_size", 1, MAX_RESULTS, MAX_RESULTS),
    )


def _list(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def _date(value: str | None, name: str) -> datetime | None:
    if value is None or not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise Open311Error(
            400, f"{name} must be a w3 date-time such as 2026-03-01T00:00:00+08:00"
        ) from None
    # The spec asks for an offset; a client that leaves it out means the county's own time.
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=BEIJING)


def _count(value: str | None, name: str, low: int, high: int, default: int) -> int:
    if value is None or not value.strip():
        return default
    if not value.strip().isdigit() or not low <= int(value) <= high:
        raise Open311Error(400, f"{name} must be a whole number from {low} to {high}")
    return int(value)


def select_requests(query: RequestQuery) -> Select[Any]:
    statement = select(
        complaints.c.id,
        complaints.c.category,
        complaints.c.submitted_at,
        complaints.c.lat,
        complaints.c.lon,
        complaint_views,
    ).join(complaint_views, complaint_views.c.complaint_id == complaints.c.id)
    if query.ids is not None:
        return statement.where(complaints.c.id.in_(query.ids)).order_by(
            complaints.c.submitted_at.desc(), complaints.c.id.desc()
        )
    if query.categories is not None:
        statement = statement.where(complaints.c.category.in_(query.categories))
    if query.start is not None:
        statement = statement.where(complaints.c.submitted_at >= query.start)
    if query.end is not None:
        statement = statement.where(complaints.c.submitted_at <= query.end)
    if query.statuses == frozenset({"open"}):
        statement = statement.where(complaint_views.c.status.not_in(CLOSED))
    elif query.statuses == frozenset({"closed"}):
        statement = statement.where(complaint_views.c.status.in_(CLOSED))
    return (
        statement.order_by(complaints.c.submitted_at.desc(), complaints.c.id.desc())
        .limit(query.page_size)
        .offset((query.page - 1) * query.page_size)
    )


def _public(coordinate: float | None) -> float | None:
    """About 1 km: the village, not the house. A family dispute placed to 100 m in a
    village of scattered farmsteads would point at one household for anyone to read."""
    return None if coordinate is None else round(coordinate, 2)


def request_document(row: Any, catalog: Catalog, *, extensions: bool) -> Document:
    """One complaint as a GeoReport v2 request, with only the fields anyone may read."""
    closed = row.status in CLOSED
    current = row.deadline_clock == row.clock
    expected = row.resolve_due_at if current and not closed and row.status != "submitted" else None
    label = STATUS_LABELS.get(row.status, row.status)
    notes = label
    if row.supervisor_name and not closed:
        notes += f"，{row.supervisor_name}督办"
    if row.overdue and not closed:
        notes += "，已超期"
    document: dict[str, Any] = {
        "service_request_id": row.id,
        "status": "closed" if closed else "open",
        "status_notes": notes,
        "service_name": row.category or "未分类",
        "service_code": catalog.code_of(row.category),
        "description": None,
        "agency_responsible": row.assignee_name,
        "service_notice": None,
        "requested_datetime": w3_datetime(row.submitted_at),
        "updated_datetime": w3_datetime(row.updated_at),
        "expected_datetime": w3_datetime(expected),
        "address": None,
        "address_id": None,
        "zipcode": None,
        "lat": _public(row.lat),
        "long": _public(row.lon),
        "media_url": None,
    }
    if extensions:
        level = Level(row.level) if row.level else None
        awaiting = current and row.status in _AWAITING_ACCEPT
        document["extended_attributes"] = {
            "yijian_status": row.status,
            "yijian_status_label": label,
            "level": level.value if level else None,
            "level_label": level.label if level else None,
            "agency_code": row.assignee_code,
            "supervised": row.supervisor_code is not None and not closed,
            "supervised_by": row.supervisor_name,
            "supervised_by_code": row.supervisor_code,
            "overdue": bool(row.overdue),
            "accept_by": w3_datetime(row.accept_due_at if awaiting else None),
        }
    return document
