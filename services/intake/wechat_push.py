"""WeChat's message push (消息推送) to this server: the URL check and signed notices.

WeChat proves a request is its own by ``signature = SHA1(sort([token, timestamp, nonce]))``
in the query string, with the token configured on both sides (``YIJIAN_WECHAT_PUSH_TOKEN``).
The URL is confirmed once with a GET that must echo ``echostr``; notices then arrive as
POSTs with the same signature (plain-text mode). yijian needs none of their content yet —
the subscribe messages it sends do not depend on them — so a verified notice is answered
``success`` and dropped; anything unsigned, wrongly signed or stale is a 401 with the reason.
Until the token is set every request is a 404.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from fastapi.responses import PlainTextResponse

from yijian.clock import Clock

# WeChat's servers and ours agree on the time within seconds; five minutes is generous and
# still stops a captured request being played back later.
TOLERANCE = timedelta(minutes=5)
Signed = Annotated[str, Query(max_length=64)]


def push_signature(token: str, timestamp: str, nonce: str) -> str:
    """WeChat's rule: the three strings sorted, joined, SHA-1 in hex."""
    joined = "".join(sorted([token, timestamp, nonce]))
    return hashlib.sha1(joined.encode(), usedforsecurity=False).hexdigest()


def build_push_router(token: str | None, clock: Clock) -> APIRouter:
    router = APIRouter(prefix="/api/v1/wechat", tags=["wechat"])

    def check(signature: str, timestamp: str, nonce: str) -> None:
        if token is None:
            raise HTTPException(
                status.HTTP_404_NOT_FOUND,
                "WeChat message push is not configured (set YIJIAN_WECHAT_PUSH_TOKEN)",
            )
        expected = push_signature(token, timestamp, nonce)
        if not hmac.compare_digest(expected.encode(), signature.encode()):
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "the push signature is wrong")
        sent = int(timestamp) if timestamp.isdigit() else 0
        if abs(clock.now().timestamp() - sent) > TOLERANCE.total_seconds():
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "the push timestamp is stale")

    @router.get("/push", response_class=PlainTextResponse)
    async def confirm_push_url(
        signature: Signed, timestamp: Signed, nonce: Signed, echostr: Signed
    ) -> str:
        """WeChat's one-time check of the push URL: echo ``echostr`` when signed right."""
        check(signature, timestamp, nonce)
        return echostr

    @router.post("/push", response_class=PlainTextResponse)
    async def receive_push(signature: Signed, timestamp: Signed, nonce: Signed) -> str:
        """A pushed notice: verified, acknowledged, not acted on (see the module's note)."""
        check(signature, timestamp, nonce)
        return "success"

    return router
