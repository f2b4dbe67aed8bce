"""The WeChat mini-program's backend: sign-in, "my complaints", and who to message.

- ``POST /api/v1/wechat/session`` trades a ``wx.login`` code for a yijian session token.
- ``POST /api/v1/complaints`` with ``Authorization: Bearer <session>`` and
  ``"channel": "wechat"`` links the complaint to the user's openid (kept with the contact
  data; events only say ``channel: wechat``).
- ``GET /api/v1/wechat/complaints`` lists that user's complaints, and the session opens
  each one's citizen view (a credential added to ``CitizenAccess``).
- ``GET /internal/v1/complaints/{id}/wechat-recipient`` tells notify, at send time, which
  openid gets the subscribe message, so the openid never has to be copied into notify.

Everything under ``/api/v1/wechat`` answers 404 with the reason until the appid and its
secret are set.
"""

# No ``from __future__ import annotations`` here: FastAPI must see the route parameters'
# ``Annotated[…, Depends(local_function)]`` as objects, which a string could not name.
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Annotated

import structlog
from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from pydantic import BaseModel, Field
from sqlalchemy import select

from services.intake.citizen_access import presented_tokens
from services.intake.contacts import ContactSeal, contact_of
from services.intake.domain import STATUS_LABELS, ComplaintIn
from services.intake.internal_api import INTERNAL_PREFIX, service_token_guard
from services.intake.store import complaint_views, complaints, contacts
from services.intake.submission import ChannelContact, ChannelRefused
from services.intake.wechat_login import LoginRefused, WeChatLogin
from services.intake.wechat_session import TOKEN_PREFIX, SessionKeySeal, WeChatSessions
from yijian.bus.outbox import ServiceDatabase
from yijian.db import reading
from yijian.level import Level
from yijian.settings import Settings

log = structlog.get_logger(__name__)

NOT_CONFIGURED = (
    "WeChat sign-in is not configured on this server "
    "(set YIJIAN_WECHAT_APPID and YIJIAN_WECHAT_SECRET)"
)
SIGN_IN_AGAIN = "the WeChat session is missing, unknown or expired; sign in again"
MAX_LISTED = 50


class SessionIn(BaseModel):
    code: str = Field(
        min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_\-]+$", description="from wx.login"
    )


class SessionOut(BaseModel):
    session_token: str = Field(description="send as `Authorization: Bearer …`")
    token_type: str = "Bearer"  # noqa: S105 - the scheme's name, not a secret
    expires_at: datetime


class MyComplaint(BaseModel):
    id: str
    tracking_no: str
    status: str
    status_label: str
    category: str | None
    level: Level | None
    assignee_name: str | None
    submitted_at: datetime
    url: str


class RecipientOut(BaseModel):
    openid: str


def _bearer(headers: Mapping[str, str]) -> str | None:
    scheme, _, value = headers.get("authorization", "").partition(" ")
    token = value.strip()
    return token if scheme.lower() == "bearer" and token.startswith(TOKEN_PREFIX) else None


class WeChatMiniProgram:
    def __init__(
        self,
        *,
        database: ServiceDatabase,
        settings: Settings,
        seal: ContactSeal,
    ) -> None:
        self._database = database
        self._seal = seal
        appid, secret = settings.wechat_appid, settings.wechat_secret
        self._login: WeChatLogin | None = None
        if appid and secret:
            self._login = WeChatLogin(
                api_base=settings.wechat_api_base,
                appid=appid,
                secret=secret.get_secret_value(),
                timeout=settings.wechat_timeout_seconds,
            )
        self.enabled = self._login is not None
        self.sessions = WeChatSessions(
            database,
            SessionKeySeal(settings.secret_value("citizen_secret")),
            timedelta(hours=settings.wechat_session_ttl_hours),
            seal,
        )
        self._internal_token = settings.secret_value("internal_token")

    async def close(self) -> None:
        if self._login is not None:
            await self._login.close()

    # -- ChannelVoucher: a submission made with a session belongs to its openid ------------

    async def vouch(
        self, headers: Mapping[str, str], complaint: ComplaintIn
    ) -> ChannelContact | None:
        token = _bearer(headers)
        if complaint.channel == "wechat" and not self.enabled:
            raise ChannelRefused(400, NOT_CONFIGURED)
        if token is None:
            if complaint.channel == "wechat":
                raise ChannelRefused(
                    401,
                    'channel "wechat" needs the mini-program\'s session: '
                    "Authorization: Bearer <token from POST /api/v1/wechat/session>",
                )
            return None
        openid = await self.sessions.openid(token)
        if openid is None:
            raise ChannelRefused(401, SIGN_IN_AGAIN)
        if complaint.channel != "wechat":
            raise ChannelRefused(400, 'a WeChat session submits with "channel": "wechat"')
        return ChannelContact(wechat_openid=openid)

    # -- CitizenCredential: the session opens the complaints its openid filed --------------

    async def opens(self, request: Request, complaint_id: str) -> bool:
        for token in presented_tokens(request):
            if not token.startswith(TOKEN_PREFIX):
                continue
            openid = await self.sessions.openid(token)
            if openid is not None and await self._filed_by(openid, complaint_id):
                return True
        return False

    async def _filed_by(self, openid: str, complaint_id: str) -> bool:
        async with reading(self._database.engine) as connection:
            found = await connection.scalar(
                select(contacts.c.complaint_id).where(
                    contacts.c.complaint_id == complaint_id,
                    contacts.c.openid_digest.in_(self._seal.openid_digests(openid)),
                )
            )
        return found is not None

    # -- routes ----------------------------------------------------------------------------

    def router(self) -> APIRouter:
        router = APIRouter(prefix="/api/v1/wechat", tags=["wechat"])

        async def configured() -> None:
            if not self.enabled:
                raise HTTPException(status.HTTP_404_NOT_FOUND, NOT_CONFIGURED)

        async def signed_in(request: Request) -> str:
            token = _bearer(request.headers)
            openid = await self.sessions.openid(token) if token else None
            if openid is None:
                raise HTTPException(
                    status.HTTP_401_UNAUTHORIZED,
                    SIGN_IN_AGAIN,
                    headers={"WWW-Authenticate": "Bearer"},
                )
            return openid

        @router.post("/session", dependencies=[Depends(configured)])
        async def open_session(body: SessionIn) -> SessionOut:
            """Sign a mini-program user in with the code from ``wx.login``.

            Errors say what to do: 400 (bad or used code: call wx.login again), 429 (WeChat's
            per-user limit), 503 or 504 with Retry-After (WeChat busy or slow), 502 (WeChat
            refused for another reason).
            """
            assert self._login is not None
            try:
                user = await self._login.code_to_session(body.code)
            except LoginRefused as error:
                headers = {"Retry-After": str(error.retry_after)} if error.retry_after else None
                raise HTTPException(error.status, error.reason, headers=headers) from None
            token, expires_at = await self.sessions.open(user)
            log.info("wechat session opened")
            return SessionOut(session_token=token, expires_at=expires_at)

        @router.get("/complaints", dependencies=[Depends(configured)])
        async def my_complaints(
            openid: Annotated[str, Depends(signed_in)],
            limit: Annotated[int, Query(ge=1, le=MAX_LISTED)] = 20,
        ) -> list[MyComplaint]:
            """The signed-in user's complaints, newest first (at most 50)."""
            async with reading(self._database.engine) as connection:
                rows = (
                    await connection.execute(
                        select(
                            complaints.c.id,
                            complaints.c.tracking_no,
                            complaints.c.category,
                            complaints.c.submitted_at,
                            complaint_views.c.status,
                            complaint_views.c.level,
                            complaint_views.c.assignee_name,
                        )
                        .join(contacts, contacts.c.complaint_id == complaints.c.id)
                        .join(complaint_views, complaint_views.c.complaint_id == complaints.c.id)
                        .where(contacts.c.openid_digest.in_(self._seal.openid_digests(openid)))
                        .order_by(complaints.c.submitted_at.desc(), complaints.c.id.desc())
                        .limit(limit)
                    )
                ).all()
            return [
                MyComplaint(
                    id=row.id,
                    tracking_no=row.tracking_no,
                    status=row.status,
                    status_label=STATUS_LABELS.get(row.status, row.status),
                    category=row.category,
                    level=Level(row.level) if row.level else None,
                    assignee_name=row.assignee_name,
                    submitted_at=row.submitted_at,
                    url=f"/api/v1/complaints/{row.id}",
                )
                for row in rows
            ]

        return router

    def internal_router(self) -> APIRouter:
        router = APIRouter(
            prefix=INTERNAL_PREFIX,
            tags=["internal"],
            dependencies=[Depends(service_token_guard(self._internal_token))],
        )

        @router.get("/complaints/{complaint_id}/wechat-recipient")
        async def wechat_recipient(complaint_id: str) -> RecipientOut:
            """The openid to send this complaint's subscribe messages to (service token).

            404 when the complaint was not filed through the mini-program. Notify asks at
            send time and keeps only ``citizen:<complaint_id>``.
            """
            async with reading(self._database.engine) as connection:
                contact = await contact_of(connection, self._seal, complaint_id)
            openid = contact.wechat_openid if contact else None
            if openid is None:
                raise HTTPException(status.HTTP_404_NOT_FOUND, "no WeChat user filed this")
            return RecipientOut(openid=openid)

        return router
