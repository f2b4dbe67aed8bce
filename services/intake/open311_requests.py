"""Open311 service requests: a POSTed form becomes a complaint; complaints become requests.

GET requests is public in GeoReport v2, so a listed request carries only what anyone may
read: the category, who handles it, by when, and a point rounded to about 1 km. The
citizen's own words, address and contact details never appear (the words may name people);
they stay with the complaint for the staff who handle it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Select, select

from services.intake.domain import STATUS_LABELS, ComplaintIn, ContactIn, LocationIn
from services.intake.open311_catalog import Catalog
from services.intake.open311_format import BEIJING, Document, Open311Error, w3_datetime
from services.intake.store import complaint_views, complaints
from services.intake.submission import ChannelContact
from yijian.level import Level

CLOSED = frozenset({"resolved", "closed"})
_AWAITING_ACCEPT = frozenset({"assigned", "escalated", "reopened", "pending_dispatch"})
DEFAULT_SPAN = timedelta(days=90)
MAX_RESULTS = 1000
MAX_IDS = 200
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
_ATTRIBUTE = re.compile(r"^attribute\[([a-z_]{1,30})\]$")
_ATTRIBUTES = {"urgency", "village_code", "grid_code"}
_CJK = re.compile(r"[\u3400-\u9fff]")
_STAND_IN = LocationIn(lat=0.0, lon=0.0)


@dataclass(frozen=True)
class NewRequest:
    complaint: ComplaintIn
    contact: ChannelContact
    located: bool  # False: only an address, so the county platform must place it


def new_request(fields: Mapping[str, str], catalog: Catalog) -> NewRequest:
    """Read a POST requests form (GeoReport v2 field names) into a complaint."""
    code = fields.get("service_code", "").strip()
    if not code:
        raise Open311Error(400, "service_code is required; GET services.json lists them")
    service = catalog.get(code)
    if service is None:
        raise Open311Error(400, f"service_code {code[:40]!r} not found; see services.json")
    attributes: dict[str, str] = {}
    for name, value in fields.items():
        match = _ATTRIBUTE.match(name)
        if name.startswith("attribute[") and (match is None or match[1] not in _ATTRIBUTES):
            raise Open311Error(400, f"unknown attribute {name[:40]!r}; see services/{code}.json")
        if match is not None and value.strip():
            attributes[match[1]] = value.strip()
    description = fields.get("description", "").strip()
    if not description:
        raise Open311Error(400, "description is required: say what happened")
    location, located = _location(fields, attributes)
    contact = _contact(fields)
    email = _email(fields)
    try:
        complaint = ComplaintIn(
            description=description,
            # LocationIn refuses an address alone (see _location), so the rest of the
            # complaint is checked around a stand-in point and the address put back after.
            location=location if located else _STAND_IN,
            category=service.category,
            urgency=attributes.get("urgency", "normal"),
            contact=contact,
            channel="open311",
        )
    except ValidationError as error:
        raise Open311Error(400, _reason(error)) from error
    if not located:
        complaint = complaint.model_copy(update={"location": location})
    return NewRequest(complaint, ChannelContact(email=email), located)


def _location(fields: Mapping[str, str], attributes: Mapping[str, str]) -> tuple[LocationIn, bool]:
    address = fields.get("address_string", "").strip() or None
    lat, lon = fields.get("lat", "").strip(), fields.get("long", "").strip()
    if bool(lat) != bool(lon):
        raise Open311Error(400, "give both lat and long, or neither")
    try:
        # A grid names the place most precisely, then a point, then a village.
        if "grid_code" in attributes:
            return LocationIn(grid_code=attributes["grid_code"], address=address), True
        if lat:
            return LocationIn(
                lat=_number(lat, "lat"), lon=_number(lon, "long"), address=address
            ), True
        if "village_code" in attributes:
            return LocationIn(village_code=attributes["village_code"], address=address), True
    except ValidationError as error:
        raise Open311Error(400, _reason(error)) from error
    if address is None:
        if fields.get("address_id", "").strip():
            raise Open311Error(400, "address_id is not supported: give lat/long or address_string")
        raise Open311Error(
            400, "a location is required: lat and long, address_string, or attribute[village_code]"
        )
    if len(address) > 200:
        raise Open311Error(400, "address_string is longer than 200 characters")
    # The web form always names a place, so LocationIn insists on one; an Open311 client may
    # only know an address, which routing cannot read: it goes to the county's dispatch queue.
    return LocationIn.model_construct(address=address), False


def _number(value: str, name: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise Open311Error(400, f"{name} must be a number in WGS84 degrees") from None


def _contact(fields: Mapping[str, str]) -> ContactIn | None:
    first = fields.get("first_name", "").strip()
    last = fields.get("last_name", "").strip()
    # Chinese names put the family name first and take no space.
    if _CJK.search(first + last):
        name = last + first
    else:
        name = " ".join(part for part in (first, last) if part)
    phone = fields.get("phone", "").strip()
    if not name and not phone:
        return None
    try:
        return ContactIn(name=name or None, phone=phone or None)
    except ValidationError as error:
        raise Open311Error(400, _reason(error)) from error


def _email(fields: Mapping[str, str]) -> str | None:
    email = fields.get("email", "").strip()
    if not email:
        return None
    if len(email) > 254 or not _EMAIL.match(email):
        raise Open311Error(400, "email is not a valid address")
    return email


def _reason(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"] if part != "location")
    message = str(first["msg"]).removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


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
