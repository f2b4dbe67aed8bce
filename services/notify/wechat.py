"""WeChat subscribe messages (订阅消息) to the citizen who filed through the mini-program.

Notify never stores an openid. A citizen's deliveries name ``citizen:<complaint_id>``; at
send time the channel asks intake (``GET /internal/v1/complaints/{id}/wechat-recipient``,
with the service token) who that is, sends, and forgets. Error texts, which land in the
delivery log, name WeChat's errcode or an exception class, never the openid or a token.

Template layout: each of the three templates (``YIJIAN_WECHAT_TEMPLATE_ASSIGNED``,
``…_REPLIED``, ``…_RESOLVED``) must be chosen in the mini-program console with these keywords,
in this order:

============================  ======================  =============================
key                           keyword (关键词)        value
============================  ======================  =============================
``character_string1``         诉求编号                the tracking number
``phrase2``                   办理状态                已分派 / 已答复 / 已办结
``thing3``                    温馨提示                what to do next (≤ 20 characters)
``time4``                     更新时间                when it happened, Beijing time
============================  ======================  =============================
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta, timezone

import httpx
import structlog
from starlette.types import ASGIApp

from services.notify.channels import DeliveryFailed, OutboundMessage
from services.notify.wechat_token import STALE_TOKEN, WeChatAccessToken
from yijian.clock import Clock

log = structlog.get_logger(__name__)

WECHAT = "wechat"
TIMEOUT_SECONDS = 5.0
BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")
NOT_SUBSCRIBED = 43101  # the citizen did not accept (or already used up) the subscription

# notify's citizen template → (办理状态, 温馨提示)
_WORDING = {
    "citizen_assigned": ("已分派", "已转交承办单位办理，请留意进展"),
    "citizen_replied": ("已答复", "承办单位已答复，请查看处理情况"),
    "citizen_resolved": ("已办结", "诉求已办结，请进入小程序评价"),
}


class CitizenOpenids:
    """Asks intake which openid filed a complaint; connected by the composition root.

    The channel is built before the all-in-one app exists, and the in-process client needs
    that app, so the app is connected in afterwards (``connect_in_process``).
    """

    def __init__(self, token: str, base_url: str | None = None) -> None:
        self._token = token
        self._client: httpx.AsyncClient | None = None
        if base_url:
            self._client = self._client_for(base_url, None)

    @property
    def connected(self) -> bool:
        return self._client is not None

    def connect_in_process(self, app: ASGIApp) -> None:
        self._client = self._client_for("http://intake.internal", httpx.ASGITransport(app=app))

    def _client_for(
        self, base_url: str, transport: httpx.AsyncBaseTransport | None
    ) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=base_url,
            transport=transport,
            headers={"Authorization": f"Bearer {self._token}"},
            timeout=TIMEOUT_SECONDS,
        )

    async def openid(self, complaint_id: str) -> str | None:
        if self._client is None:
            raise DeliveryFailed("notify does not know where intake is (YIJIAN_INTAKE_URL)")
        try:
            response = await self._client.get(
                f"/internal/v1/complaints/{complaint_id}/wechat-recipient"
            )
        except httpx.HTTPError as error:
            raise DeliveryFailed(f"intake unreachable: {type(error).__name__}") from None
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise DeliveryFailed(f"intake answered HTTP {response.status_code}")
        openid = response.json().get("openid")
        if not isinstance(openid, str) or not openid:
            raise DeliveryFailed("intake's recipient answer has no openid")
        return openid

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()


class WeChatSubscribeChannel:
    def __init__(
        self,
        *,
        api_base: str,
        appid: str,
        secret: str,
        templates: Mapping[str, str | None],
        page: str,
        state: str,
        clock: Clock,
        recipients: CitizenOpenids,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self._client = client or httpx.AsyncClient(timeout=httpx.Timeout(TIMEOUT_SECONDS))
        self._owns_client = client is None
        self._url = api_base.rstrip("/") + "/cgi-bin/message/subscribe/send"
        self.tokens = WeChatAccessToken(
            client=self._client, api_base=api_base, appid=appid, secret=secret, clock=clock
        )
        self._templates = templates
        self._page = page
        self._state = state
        self._clock = clock
        self.recipients = recipients

    async def send(self, message: OutboundMessage) -> None:
        template_id = self._templates.get(message.template)
        wording = _WORDING.get(message.template)
        if not template_id or wording is None:
            setting = "YIJIAN_WECHAT_TEMPLATE_" + message.template.removeprefix("citizen_").upper()
            raise DeliveryFailed(f"no WeChat template for {message.template}: set {setting}")
        openid = await self.recipients.openid(message.complaint_id)
        if openid is None:
            raise DeliveryFailed("no WeChat user filed this complaint")
        status, hint = wording
        body = {
            "touser": openid,
            "template_id": template_id,
            "page": f"{self._page}?id={message.complaint_id}",
            "miniprogram_state": self._state,
            "lang": "zh_CN",
            "data": {
                "character_string1": {"value": message.tracking_no},
                "phrase2": {"value": status},
                "thing3": {"value": hint},
                "time4": {"value": _beijing(self._clock.now())},
            },
        }
        # A token WeChat calls stale is dropped and the message tried once more with a new
        # one; a second refusal is an ordinary failure for the delivery loop to retry.
        for attempt in (1, 2):
            token = await self.tokens.get()
            errcode = await self._post(token, body)
            if errcode == 0:
                return
            if errcode in STALE_TOKEN and attempt == 1:
                log.info("wechat access_token refused; fetching a new one", errcode=errcode)
                self.tokens.invalidate(token)
                continue
            if errcode == NOT_SUBSCRIBED:
                raise DeliveryFailed("the citizen has not subscribed to this message (43101)")
            raise DeliveryFailed(f"WeChat refused the message (errcode {errcode})")

    async def _post(self, token: str, body: Mapping[str, object]) -> int:
        try:
            response = await self._client.post(self._url, params={"access_token": token}, json=body)
        except httpx.HTTPError as error:
            # The URL holds the access_token: only the error's class goes into the log.
            raise DeliveryFailed(f"WeChat unreachable: {type(error).__name__}") from None
        if response.status_code != 200:
            raise DeliveryFailed(f"WeChat answered HTTP {response.status_code}")
        try:
            answer = response.json()
        except ValueError:
            raise DeliveryFailed("WeChat answered something that is not JSON") from None
        errcode = answer.get("errcode", 0) if isinstance(answer, dict) else -999
        return errcode if isinstance(errcode, int) else -999

    async def close(self) -> None:
        await self.recipients.close()
        if self._owns_client:
            await self._client.aclose()


def _beijing(instant: datetime) -> str:
    return instant.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M")
