"""Exchanging a mini-program login ``code`` for the user's openid (WeChat's jscode2session).

The request carries the app secret and the answer carries the session_key, so neither the
URL nor the body of any exchange is ever logged or put into an error message: failures are
described by WeChat's errcode or by the exception's class name only.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import httpx
import structlog
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

log = structlog.get_logger(__name__)
# httpx logs every request's URL at INFO, and WeChat's URLs carry the app secret, the login
# code or the access_token: whatever the logging setup, those lines must never be written.
logging.getLogger("httpx").setLevel(logging.WARNING)

_OPENID = re.compile(r"^[A-Za-z0-9_-]{6,64}$")


@dataclass(frozen=True)
class WeChatUser:
    openid: str
    session_key: str


class LoginRefused(Exception):
    """WeChat or the network said no; ``status`` is what our caller should answer."""

    def __init__(self, status: int, reason: str, retry_after: int | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.retry_after = retry_after


def refusal(errcode: int) -> LoginRefused:
    """WeChat's errcode, as the answer the mini-program should get."""
    if errcode in (40029, 40163):  # invalid code; code already used
        return LoginRefused(
            400, "the login code is invalid or was already used; call wx.login again"
        )
    if errcode == 45011:  # per-user rate limit
        return LoginRefused(
            429, "too many sign-ins from this WeChat user; try again in a minute", 60
        )
    if errcode == -1:  # WeChat busy
        return LoginRefused(503, "WeChat is busy; try again shortly", 2)
    return LoginRefused(502, f"WeChat refused the sign-in (errcode {errcode})")


class WeChatLogin:
    """The jscode2session call: explicit timeouts, one retry when the network fails."""

    def __init__(
        self,
        *,
        api_base: str,
        appid: str,
        secret: str,
        timeout: float = 5.0,
        attempts: int = 2,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self._url = api_base.rstrip("/") + "/sns/jscode2session"
        self._appid = appid
        self._secret = secret
        self._attempts = attempts
        self._owns_client = client is None
        # Connect fails fast; the whole exchange is bounded, so a hung WeChat cannot hold a
        # citizen's request (or a worker) for long.
        self._client = client or httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 3.0))
        )

    async def code_to_session(self, code: str) -> WeChatUser:
        params = {
            "appid": self._appid,
            "secret": self._secret,
            "js_code": code,
            "grant_type": "authorization_code",
        }
        try:
            # A lost answer may mean WeChat already used the code; the retry then gets
            # 40163 and the mini-program logs in again, which is still the right outcome.
            async for attempt in AsyncRetrying(
                retry=retry_if_exception_type(httpx.TransportError),
                stop=stop_after_attempt(self._attempts),
                wait=wait_exponential(multiplier=0.1, max=1.0),
                reraise=True,
            ):
                with attempt:
                    response = await self._client.get(self._url, params=params)
        except httpx.TimeoutException as error:
            log.warning("wechat sign-in timed out", error=type(error).__name__)
            raise LoginRefused(504, "WeChat did not answer in time; try again", 2) from None
        except httpx.TransportError as error:
            log.warning("wechat sign-in unreachable", error=type(error).__name__)
            raise LoginRefused(502, "WeChat could not be reached; try again", 2) from None
        return self._read(response)

    def _read(self, response: httpx.Response) -> WeChatUser:
        if response.status_code != 200:
            log.warning("wechat sign-in failed", http_status=response.status_code)
            raise LoginRefused(502, f"WeChat answered HTTP {response.status_code}")
        try:
            # WeChat labels this JSON as text/plain, so read it whatever the header says.
            answer = response.json()
        except ValueError:
            raise LoginRefused(502, "WeChat answered something that is not JSON") from None
        if not isinstance(answer, dict):
            raise LoginRefused(502, "WeChat answered something unexpected")
        errcode = answer.get("errcode", 0)
        if errcode not in (0, None):
            code = errcode if isinstance(errcode, int) else -999
            log.info("wechat refused sign-in", errcode=code)
            raise refusal(code)
        openid, session_key = answer.get("openid"), answer.get("session_key")
        if not isinstance(openid, str) or not _OPENID.match(openid):
            raise LoginRefused(502, "WeChat's answer has no usable openid")
        if not isinstance(session_key, str) or not 0 < len(session_key) <= 64:
            raise LoginRefused(502, "WeChat's answer has no usable session_key")
        return WeChatUser(openid=openid, session_key=session_key)

    async def close(self) -> None:
        if self._owns_client:
            await self._client.aclose()
