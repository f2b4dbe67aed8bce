"""What the citizen sent, fetched from intake's internal API for the staff workbench.

Routing owns the case; intake owns the citizen's words, photos and contact. A member of staff
opening a case waits on this call, so it is an HTTP query rather than an event. It fails
soft: when intake is slow, down or answers nonsense, the workbench still shows the case,
with a notice instead of the submission.

In the all-in-one process the client talks to the same ASGI app in process
(``httpx.ASGITransport``); in production ``YIJIAN_INTAKE_URL`` names intake's address.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import httpx
import structlog
from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.types import ASGIApp

log = structlog.get_logger(__name__)

TIMEOUT_SECONDS = 3.0
PHOTO_TYPES = frozenset({"image/jpeg", "image/png", "image/webp"})
MAX_PHOTO_BYTES = 20 * 1024 * 1024


class _Lenient(BaseModel):
    # Intake may add fields; routing reads only what it knows.
    model_config = ConfigDict(extra="ignore")


class SubmittedLocation(_Lenient):
    grid_code: str | None = None
    village_code: str | None = None
    lat: float | None = None
    lon: float | None = None
    address: str | None = None


class Contact(_Lenient):
    name: str | None = None
    phone: str | None = None


class Photo(_Lenient):
    id: str
    content_type: str | None = None
    size: int | None = None
    url: str | None = None


class Submission(_Lenient):
    id: str
    tracking_no: str
    description: str
    category: str | None = None
    urgency: str | None = None
    channel: str | None = None
    submitted_at: datetime | None = None
    location: SubmittedLocation = SubmittedLocation()
    contact: Contact | None = None
    # None: intake did not say (a version older than the choice); privacy.py treats that
    # as asked, so a village never sees what it might not be allowed to.
    conceal_from_village: bool | None = None
    photos: list[Photo] = []
    rating: str | None = None


@dataclass(frozen=True)
class PhotoFile:
    content_type: str
    content: bytes


@dataclass(frozen=True)
class Unavailable:
    """Why the submission could not be shown; safe to put on a staff screen."""

    notice: str


class IntakeClient:
    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client

    @classmethod
    def over_http(cls, base_url: str, token: str) -> IntakeClient:
        return cls(
            httpx.AsyncClient(
                base_url=base_url,
                headers={"Authorization": f"Bearer {token}"},
                timeout=TIMEOUT_SECONDS,
            )
        )

    @classmethod
    def in_process(cls, app: ASGIApp, token: str) -> IntakeClient:
        """The embedded wiring: the same app, no network in between."""
        return cls(
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app),
                base_url="http://intake.internal",
                headers={"Authorization": f"Bearer {token}"},
                timeout=TIMEOUT_SECONDS,
            )
        )

    async def submission(self, complaint_id: str) -> Submission | Unavailable:
        try:
            response = await self._client.get(f"/internal/v1/complaints/{complaint_id}")
        except httpx.HTTPError as error:
            log.warning("intake unreachable", error=type(error).__name__)
            return Unavailable("暂时无法读取群众提交的内容（受理服务无响应），请稍后刷新")
        if response.status_code == 404:
            return Unavailable("受理服务中没有这条诉求的原始内容")
        if response.status_code != 200:
            log.warning("intake refused", status=response.status_code)
            return Unavailable(f"暂时无法读取群众提交的内容（受理服务返回 {response.status_code}）")
        try:
            return Submission.model_validate_json(response.content)
        except ValidationError as error:
            log.warning("intake answered an unexpected shape", errors=error.error_count())
            return Unavailable("受理服务返回的内容无法识别，请联系管理员")

    async def photo(self, complaint_id: str, photo_id: str) -> PhotoFile | Unavailable | None:
        """One photo's bytes and type; None when intake has no such photo."""
        path = f"/internal/v1/complaints/{complaint_id}/photos/{photo_id}"
        try:
            response = await self._client.get(path)
        except httpx.HTTPError as error:
            log.warning("intake unreachable", error=type(error).__name__)
            return Unavailable("暂时无法读取照片")
        if response.status_code == 404:
            return None
        content_type = response.headers.get("content-type", "")
        if response.status_code != 200 or content_type not in PHOTO_TYPES:
            log.warning("intake photo refused", status=response.status_code)
            return Unavailable("暂时无法读取照片")
        if len(response.content) > MAX_PHOTO_BYTES:
            return Unavailable("照片过大")
        return PhotoFile(content_type, response.content)

    async def close(self) -> None:
        await self._client.aclose()


class SubmissionSource(Protocol):
    async def submission(self, complaint_id: str) -> Submission | Unavailable: ...

    async def photo(self, complaint_id: str, photo_id: str) -> PhotoFile | Unavailable | None: ...

    async def close(self) -> None: ...


class IntakeLink:
    """Routing's way to intake, connected by the composition root when it knows how.

    The routes are built before the all-in-one app exists, and the in-process client needs
    that app; so the routes hold this link and the app is connected into it afterwards.
    """

    def __init__(self, source: SubmissionSource | None = None) -> None:
        self._source = source

    @property
    def connected(self) -> bool:
        return self._source is not None

    def connect(self, source: SubmissionSource) -> None:
        self._source = source

    async def submission(self, complaint_id: str) -> Submission | Unavailable:
        if self._source is None:
            return Unavailable("未配置受理服务地址（YIJIAN_INTAKE_URL），无法显示群众提交的内容")
        return await self._source.submission(complaint_id)

    async def photo(self, complaint_id: str, photo_id: str) -> PhotoFile | Unavailable | None:
        if self._source is None:
            return Unavailable("未配置受理服务地址（YIJIAN_INTAKE_URL）")
        return await self._source.photo(complaint_id, photo_id)

    async def close(self) -> None:
        if self._source is not None:
            await self._source.close()
