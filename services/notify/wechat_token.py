"""The access_token every WeChat server API call needs, fetched once and reused.

It comes from ``/cgi-bin/stable_token`` rather than ``/cgi-bin/token``: with several notify
replicas sharing one appid, each ``/cgi-bin/token`` call would revoke the token the other
replicas hold, while ``stable_token`` (without ``force_refresh``) hands every caller the same
token until it expires. The token is kept until shortly before its ``expires_in`` (by the
injected clock, so tests expire it by moving a fake clock) and dropped at once when WeChat
calls it invalid (40001, 42001), after which the next call fetches a fresh one.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

import httpx
import structlog

from services.notify.channels import DeliveryFailed
from yijian.clock import Clock

log = structlog.get_logger(__name__)
# httpx logs every request's URL at INFO, and WeChat's URLs carry the app secret, the login
# code or the access_token: whatever the logging setup, those lines must never be written.
logging.getLogger("httpx").setLevel(logging.WARNING)

# Refresh this long before WeChat's expiry, so a token never dies between fetch and use.
EARLY = timedelta(minutes=5)
# WeChat's errcodes for "this access_token is not (or no longer) valid".
STALE_TOKEN = frozenset({40001, 40014, 42001})


class WeChatAccessToken:
    def __init__(
        self,
        *,
        client: httpx.AsyncClient,
        api_base: str,
        appid: str,
        secret: str,
        clock: Clock,
    ) -> None:
        self._client = client
        self._url = api_base.rstrip("/") + "/cgi-bin/stable_token"
        self._appid = appid
        self._secret = secret
        self._clock = clock
        self._token: str | None = None
        self._good_until: datetime | None = None
        # One fetch at a time: a batch of concurrent sends must not each ask for a token.
        self._lock = asyncio.Lock()

    async def get(self) -> str:
        async with self._lock:
            now = self._clock.now()
            if self._token is None or self._good_until is None or now >= self._good_until:
                self._token, self._good_until = await self._fetch(now)
            return self._token

    def invalidate(self, token: str) -> None:
        """Forget ``token`` (WeChat refused it); a newer one fetched meanwhile stays."""
        if self._token == token:
            self._token = None
            self._good_until = None

    async def _fetch(self, now: datetime) -> tuple[str, datetime]:
        body = {
            "grant_type": "client_credential",
            "appid": self._appid,
            "secret": self._secret,
            "force_refresh": False,
        }
        try:
            response = await self._client.post(self._url, json=body)
        except httpx.HTTPError as error:
            # The request body holds the app secret: name the error's class, nothing more.
            raise DeliveryFailed(
                f"WeChat token service unreachable: {type(error).__name__}"
            ) from None
        if response.status_code != 200:
            raise DeliveryFailed(f"WeChat token service answered HTTP {response.status_code}")
        try:
            answer = response.json()
        except ValueError:
            raise DeliveryFailed(
                "WeChat token service answered something that is not JSON"
            ) from None
        errcode = answer.get("errcode", 0) if isinstance(answer, dict) else -999
        if errcode:
            raise DeliveryFailed(f"WeChat refused an access_token (errcode {errcode})")
        token, expires_in = answer.get("access_token"), answer.get("expires_in")
        if not isinstance(token, str) or not token or not isinstance(expires_in, int):
            raise DeliveryFailed("WeChat's access_token answer is incomplete")
        lifetime = timedelta(seconds=expires_in)
        log.info("wechat access_token fetched", expires_in=expires_in)
        return token, now + max(lifetime - EARLY, lifetime / 2)
