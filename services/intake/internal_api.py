"""Intake's internal API: everything the citizen sent, for other services' staff screens.

Callers are services, not people: they present the shared service token
(``Authorization: Bearer <YIJIAN_INTERNAL_TOKEN>``). The answer holds personal data as
stored; masking it for a member of staff whose role may not see it is the caller's job,
because only the caller knows who is looking.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Awaitable, Callable
from datetime import datetime

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.responses import FileResponse
from pydantic import BaseModel
from sqlalchemy import desc, select

from services.intake.citizen_access import NOT_FOUND
from services.intake.citizen_api import PHOTO_ID, PhotoOut, photo_response
from services.intake.contacts import Contact, ContactSeal, contact_of
from services.intake.photos import Photos
from services.intake.store import complaints, ratings
from yijian.db import reading

INTERNAL_PREFIX = "/internal/v1"


class PlaceOut(BaseModel):
    grid_code: str | None
    village_code: str | None
    lat: float | None
    lon: float | None
    address: str | None


class ContactOut(BaseModel):
    name: str | None
    phone: str | None


class ComplaintRecord(BaseModel):
    id: str
    tracking_no: str
    description: str
    category: str | None
    urgency: str
    channel: str
    submitted_at: datetime
    location: PlaceOut
    contact: ContactOut | None
    conceal_from_village: bool
    photos: list[PhotoOut]
    rating: str | None


def service_token_guard(expected: str) -> Callable[..., Awaitable[None]]:
    """A route dependency: the caller must present the shared service token, else 401."""

    async def guard(request: Request) -> None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        presented = token.strip().encode() if scheme.lower() == "bearer" else b""
        if not hmac.compare_digest(presented, expected.encode()):
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "a service token is required",
                headers={"WWW-Authenticate": "Bearer"},
            )

    return guard


def build_internal_router(photos: Photos, internal_token: str, seal: ContactSeal) -> APIRouter:
    router = APIRouter(
        prefix=INTERNAL_PREFIX,
        tags=["internal"],
        dependencies=[Depends(service_token_guard(internal_token))],
    )
    database = photos.database

    @router.get("/complaints/{complaint_id}")
    async def complaint_record(complaint_id: str) -> ComplaintRecord:
        """The complaint as the citizen sent it, for staff screens (service token required).

        ``{id, tracking_no, description, category, urgency, channel, submitted_at,
        location: {grid_code, village_code, lat, lon, address}, contact: {name, phone} | null,
        conceal_from_village, photos: [{id, content_type, size, url}], rating}``

        - ``location`` has exactly one of grid_code, village_code or lat+lon, as submitted;
          lat/lon are exact here (events carry them rounded). ``address`` is the citizen's
          own words about the place and counts as personal data.
        - ``contact`` is null when the citizen left neither name nor phone. **Personal data:
          mask it unless the viewer's role allows.**
        - ``conceal_from_village`` is true when the citizen asked that their village
          (community) never learn who they are: **staff at village level must get neither
          ``contact`` nor ``location.address``, not even masked.**
        - ``photos[].url`` is this API's photo route (service token again).
        - ``rating`` is the citizen's latest verdict: satisfied, basically_satisfied,
          unsatisfied, or null.
        """
        async with reading(database.engine) as connection:
            row = (
                await connection.execute(select(complaints).where(complaints.c.id == complaint_id))
            ).first()
            if row is None:
                raise HTTPException(status.HTTP_404_NOT_FOUND, NOT_FOUND)
            contact = await contact_of(connection, seal, complaint_id) or Contact()
            rating = await connection.scalar(
                select(ratings.c.rating)
                .where(ratings.c.complaint_id == complaint_id)
                .order_by(desc(ratings.c.rated_at))
                .limit(1)
            )
            attached = await photos.of(connection, complaint_id)
        has_contact = contact.name is not None or contact.phone is not None
        return ComplaintRecord(
            id=row.id,
            tracking_no=row.tracking_no,
            description=row.description,
            category=row.category,
            urgency=row.urgency,
            channel=row.channel,
            submitted_at=row.submitted_at,
            location=PlaceOut(
                grid_code=row.grid_code,
                village_code=row.village_code,
                lat=row.lat,
                lon=row.lon,
                address=contact.address,
            ),
            contact=ContactOut(name=contact.name, phone=contact.phone) if has_contact else None,
            conceal_from_village=contact.conceal_from_village,
            photos=[PhotoOut.of(photo, INTERNAL_PREFIX) for photo in attached],
            rating=rating,
        )

    @router.get(
        "/complaints/{complaint_id}/photos/{photo_id}",
        response_class=FileResponse,
        responses={200: {"content": {"image/jpeg": {}, "image/png": {}, "image/webp": {}}}},
    )
    async def complaint_photo(complaint_id: str, photo_id: str) -> FileResponse:
        """One photo of the complaint, for staff screens (service token required)."""
        found = await photos.find(complaint_id, photo_id) if re.match(PHOTO_ID, photo_id) else None
        if found is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no such photo")
        return photo_response(*found)

    return router
