"""What a citizen does after submitting: find the complaint again, add photos, rate it."""

import re
from typing import Annotated

from fastapi import APIRouter, Depends, File, HTTPException, Response, UploadFile, status
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import select

from services.intake.citizen_access import CitizenAccess, LookupGuard
from services.intake.contacts import ContactSeal, contact_of
from services.intake.photos import EXTENSIONS, MAX_PHOTO_BYTES, Photo, PhotoRefused, Photos
from services.intake.rating import RATING_LABELS, RatingIn, RatingRefused, Ratings
from services.intake.store import complaints
from yijian.db import reading

PHOTO_ID = r"^[0-9a-f]{32}$"
_TRACKING_NO = re.compile(r"^GZ\d{6}-[0-9A-Z]{6}$")
_NO_MATCH = "no complaint matches this tracking number and phone number"


class LookupIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tracking_no: str = Field(max_length=30, examples=["GZ260302-7K3Q9M"])
    phone_last4: str = Field(pattern=r"^\d{4}$", description="the last four digits")

    @field_validator("tracking_no")
    @classmethod
    def _tracking_no(cls, value: str) -> str:
        cleaned = value.strip().upper()
        if not _TRACKING_NO.match(cleaned):
            raise ValueError("a tracking number looks like GZ260302-7K3Q9M")
        return cleaned


class LookupOut(BaseModel):
    id: str
    tracking_no: str
    url: str
    citizen_token: str


class PhotoOut(BaseModel):
    id: str
    content_type: str
    size: int
    url: str

    @classmethod
    def of(cls, photo: Photo, prefix: str = "/api/v1") -> "PhotoOut":
        return cls(
            id=photo.id,
            content_type=photo.content_type,
            size=photo.size,
            url=f"{prefix}/complaints/{photo.complaint_id}/photos/{photo.id}",
        )


class RatingOut(BaseModel):
    rating: str
    rating_label: str
    reopen_expected: bool = Field(description="不满意 within the policy's limit of reopenings")


class CategoryOut(BaseModel):
    name: str


def _digits(phone: str | None) -> str:
    return re.sub(r"\D", "", phone or "")


def photo_response(photo: Photo, path: object) -> FileResponse:
    """A stored photo, labelled with the type we checked, never to be sniffed as anything else."""
    name = f"{photo.id}.{EXTENSIONS[photo.content_type]}"
    return FileResponse(
        str(path),
        media_type=photo.content_type,
        headers={
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "Cache-Control": "private, max-age=86400",
            "Content-Disposition": f'inline; filename="{name}"',
        },
    )


def build_citizen_router(
    access: CitizenAccess,
    photos: Photos,
    ratings: Ratings,
    guard: LookupGuard,
    categories: list[str],
    seal: ContactSeal,
) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["citizens"])
    OwnComplaint = Annotated[str, Depends(access.dependency())]
    database = photos.database

    @router.get("/categories")
    async def list_categories() -> list[CategoryOut]:
        """The categories a complaint may name, in the order the policy offers them."""
        return [CategoryOut(name=name) for name in categories]

    @router.post("/complaints/lookup", responses={404: {}, 429: {}})
    async def lookup(body: LookupIn, response: Response) -> LookupOut:
        """Find a complaint again: its tracking number and the last four digits of the phone
        given with it. Any mismatch is the same 404; five misses for one tracking number
        within 15 minutes are 429 with Retry-After, whether or not the number exists."""
        attempt = await guard.attempt(body.tracking_no)
        if attempt.retry_after is not None:
            raise HTTPException(
                status.HTTP_429_TOO_MANY_REQUESTS,
                "too many attempts for this tracking number; try again later",
                headers={"Retry-After": str(attempt.retry_after)},
            )
        async with reading(database.engine) as connection:
            row = (
                await connection.execute(
                    select(complaints.c.id, complaints.c.tracking_no).where(
                        complaints.c.tracking_no == body.tracking_no
                    )
                )
            ).first()
            # The one sealed phone number of that tracking number is opened, and only here.
            contact = await contact_of(connection, seal, row.id) if row else None
        digits = _digits(contact.phone if contact else None)
        if row is None or len(digits) < 4 or not digits.endswith(body.phone_last4):
            raise HTTPException(status.HTTP_404_NOT_FOUND, _NO_MATCH)
        await guard.found(attempt)
        response.headers["Cache-Control"] = "no-store"
        return LookupOut(
            id=row.id,
            tracking_no=row.tracking_no,
            url=f"/api/v1/complaints/{row.id}",
            citizen_token=access.tokens.issue(row.id),
        )

    @router.post(
        "/complaints/{complaint_id}/photos",
        status_code=status.HTTP_201_CREATED,
        responses={200: {"description": "the same photo was sent before"}, 413: {}, 415: {}},
    )
    async def add_photo(
        complaint_id: OwnComplaint,
        photo: Annotated[UploadFile, File(description="one JPEG, PNG or WebP, at most 5 MB")],
        response: Response,
    ) -> PhotoOut:
        """Attach one photo (multipart field ``photo``); up to 4 per complaint.

        The type is judged by the file's first bytes (415 with the reason otherwise), not by
        its name or declared type. Sending the same picture again answers 200 with the photo
        already stored, so a retry after a dropped connection never adds it twice.
        """
        data = await photo.read(MAX_PHOTO_BYTES + 1)
        try:
            stored, new = await photos.add(complaint_id, data)
        except PhotoRefused as refusal:
            raise HTTPException(refusal.status, refusal.reason) from refusal
        if not new:
            response.status_code = status.HTTP_200_OK
        out = PhotoOut.of(stored)
        response.headers["Location"] = out.url
        return out

    @router.get(
        "/complaints/{complaint_id}/photos/{photo_id}",
        response_class=FileResponse,
        responses={200: {"content": {"image/jpeg": {}, "image/png": {}, "image/webp": {}}}},
    )
    async def get_photo(complaint_id: OwnComplaint, photo_id: str) -> FileResponse:
        """One of the complaint's photos, for its citizen."""
        found = await photos.find(complaint_id, photo_id) if re.match(PHOTO_ID, photo_id) else None
        if found is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no such photo")
        return photo_response(*found)

    @router.post("/complaints/{complaint_id}/rating", responses={409: {}})
    async def rate(complaint_id: OwnComplaint, body: RatingIn) -> RatingOut:
        """满意 / 基本满意 / 不满意, once for each time it is resolved (409 otherwise).

        不满意 sends it back to the same level with fresh deadlines, as long as the policy's
        number of reopenings is not used up.
        """
        try:
            rated = await ratings.rate(complaint_id, body.rating)
        except RatingRefused as refusal:
            raise HTTPException(refusal.status, refusal.reason) from refusal
        return RatingOut(
            rating=rated.rating,
            rating_label=RATING_LABELS[rated.rating],
            reopen_expected=rated.reopen_expected,
        )

    return router
