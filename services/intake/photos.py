"""Photos a citizen attaches to a complaint: checked by content, stored under random names.

Photos are sent one per request *after* the complaint is filed, not inside the submission:
on a slow phone connection the complaint (a few hundred bytes) is safe and has its tracking
number within a second, and each photo (up to 5 MB) then travels on its own — a dropped
connection costs one photo, which the page retries, never the complaint. Sending the same
picture again is answered with the photo already stored, so retries never count twice.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from uuid import uuid4

from sqlalchemy import func, insert, select
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from services.intake.store import complaint_views, complaints, photos
from yijian.bus.outbox import ServiceDatabase
from yijian.db import reading

MAX_PHOTO_BYTES = 5 * 1024 * 1024
MAX_PHOTOS = 4  # the default; YIJIAN_PHOTOS_PER_COMPLAINT
MAX_TOTAL_BYTES = 12 * 1024 * 1024  # the default; YIJIAN_PHOTO_BYTES_PER_COMPLAINT
# The multipart envelope around one photo is small; 64 KiB is plenty for it.
PHOTO_REQUEST_BYTES = MAX_PHOTO_BYTES + 64 * 1024
EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp"}
_STORED_NAME = re.compile(r"^[0-9a-f]{32}$")


class PhotoRefused(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def sniff(data: bytes) -> str | None:
    """The photo's type from its first bytes; the file name and the client's word count for
    nothing, because either can claim anything."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def _looks_like(data: bytes) -> str:
    """A name for what a refused file seems to be, so the citizen knows what to change."""
    if data[4:8] == b"ftyp" and data[8:12] in {b"heic", b"heix", b"mif1", b"msf1", b"hevc"}:
        return "a HEIC photo (choose 'Most Compatible' in the camera settings, or send a JPEG)"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "a GIF image"
    if data.startswith(b"%PDF"):
        return "a PDF document"
    if data.lstrip()[:1] == b"<":
        return "text or markup (SVG or HTML)"
    return "none of them"


def check_photo(data: bytes) -> str:
    """The content type of an acceptable photo, else ``PhotoRefused`` with the reason."""
    if not data:
        raise PhotoRefused(422, "the photo is empty")
    if len(data) > MAX_PHOTO_BYTES:
        raise PhotoRefused(413, f"a photo may be at most {MAX_PHOTO_BYTES // (1024 * 1024)} MB")
    content_type = sniff(data)
    if content_type is None:
        raise PhotoRefused(
            415,
            "only JPEG, PNG or WebP photos are accepted (judged by the file's content, not its "
            f"name); this file looks like {_looks_like(data)}",
        )
    return content_type


class PhotoFiles:
    """The folder of photo files. Names are made here, so no client path ever reaches it."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, stored_as: str) -> Path:
        if not _STORED_NAME.match(stored_as):
            raise ValueError("not a stored photo name")
        return self.root / stored_as

    async def put(self, data: bytes) -> str:
        stored_as = secrets.token_hex(16)
        await asyncio.to_thread(self._write, self.path(stored_as), data)
        return stored_as

    async def remove(self, stored_as: str) -> None:
        await asyncio.to_thread(self.path(stored_as).unlink, True)

    def _write(self, target: Path, data: bytes) -> None:
        # Written aside, synced, then renamed: a crash never leaves half a photo behind the
        # name a committed row points to.
        self.root.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".partial")
        with partial.open("wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        partial.replace(target)


@dataclass(frozen=True)
class Photo:
    id: str
    complaint_id: str
    stored_as: str
    content_type: str
    size: int
    uploaded_at: datetime


def _photo(row: Row[tuple[object, ...]]) -> Photo:
    return Photo(
        id=row.id,
        complaint_id=row.complaint_id,
        stored_as=row.stored_as,
        content_type=row.content_type,
        size=row.size,
        uploaded_at=row.uploaded_at,
    )


class Photos:
    def __init__(
        self,
        database: ServiceDatabase,
        files: PhotoFiles,
        *,
        max_count: int = MAX_PHOTOS,
        max_total_bytes: int = MAX_TOTAL_BYTES,
    ) -> None:
        self.database = database
        self.files = files
        # Both bound what one complaint can make intake keep, whoever holds its token.
        self.max_count = max_count
        self.max_total_bytes = max_total_bytes

    async def add(self, complaint_id: str, data: bytes) -> tuple[Photo, bool]:
        """Store a photo; returns it and whether it is new (False: the same one came again)."""
        content_type = check_photo(data)
        digest = hashlib.sha256(data).hexdigest()
        stored_as = await self.files.put(data)
        try:
            try:
                return await self._record(complaint_id, stored_as, content_type, data, digest)
            except IntegrityError:
                # Two identical uploads racing: the loser's insert fails on the unique
                # digest, and a second pass finds the winner's photo.
                return await self._record(complaint_id, stored_as, content_type, data, digest)
        except BaseException:
            await self.files.remove(stored_as)
            raise

    async def _record(
        self, complaint_id: str, stored_as: str, content_type: str, data: bytes, digest: str
    ) -> tuple[Photo, bool]:
        async with self.database.transaction() as tx:
            connection = tx.connection
            await self._lock(connection, complaint_id)
            earlier = (
                await connection.execute(
                    select(photos).where(
                        photos.c.complaint_id == complaint_id, photos.c.sha256 == digest
                    )
                )
            ).first()
            if earlier is not None:
                await self.files.remove(stored_as)
                return _photo(earlier), False
            count, total = (
                await connection.execute(
                    select(func.count(), func.coalesce(func.sum(photos.c.size), 0)).where(
                        photos.c.complaint_id == complaint_id
                    )
                )
            ).one()
            if count >= self.max_count:
                raise PhotoRefused(
                    422, f"a complaint may have at most {self.max_count} photos; it has them"
                )
            if total + len(data) > self.max_total_bytes:
                raise PhotoRefused(
                    413,
                    f"a complaint's photos may add up to at most "
                    f"{self.max_total_bytes // (1024 * 1024)} MB; this one would pass that "
                    f"({(total + len(data)) / (1024 * 1024):.1f} MB); send a smaller one",
                )
            photo = Photo(uuid4().hex, complaint_id, stored_as, content_type, len(data), tx.now)
            await connection.execute(
                insert(photos).values(
                    id=photo.id,
                    complaint_id=complaint_id,
                    stored_as=stored_as,
                    content_type=content_type,
                    size=photo.size,
                    sha256=digest,
                    uploaded_at=photo.uploaded_at,
                )
            )
            return photo, True

    async def _lock(self, connection: AsyncConnection, complaint_id: str) -> None:
        """Hold the complaint while counting, so two uploads at once cannot make five.

        SQLite serialises writers anyway; PostgreSQL needs the row lock.
        """
        query = (
            select(complaint_views.c.status)
            .join(complaints, complaints.c.id == complaint_views.c.complaint_id)
            .where(complaints.c.id == complaint_id)
        )
        if connection.dialect.name != "sqlite":
            query = query.with_for_update(of=complaint_views)
        state = await connection.scalar(query)
        if state is None:
            raise PhotoRefused(404, "no complaint with this id")
        if state == "closed":
            raise PhotoRefused(409, "this complaint is archived; photos can no longer be added")

    async def of(self, connection: AsyncConnection, complaint_id: str) -> list[Photo]:
        rows = await connection.execute(
            select(photos)
            .where(photos.c.complaint_id == complaint_id)
            .order_by(photos.c.uploaded_at, photos.c.id)
        )
        return [_photo(row) for row in rows]

    async def find(self, complaint_id: str, photo_id: str) -> tuple[Photo, Path] | None:
        """The photo and its file, when both exist; the path comes from our row, not the URL."""
        async with reading(self.database.engine) as connection:
            row = (
                await connection.execute(
                    select(photos).where(
                        photos.c.complaint_id == complaint_id, photos.c.id == photo_id
                    )
                )
            ).first()
        if row is None:
            return None
        photo = _photo(row)
        path = self.files.path(photo.stored_as)
        return (photo, path) if path.is_file() else None
