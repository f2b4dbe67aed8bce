"""WeChat's message push: the URL check echoes only to a correctly signed, fresh request."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from tests.conftest import MONDAY_MORNING, Harness, start_harness, stop_harness
from yijian.clock import FakeClock

TOKEN = "push-token-from-the-console"


def signed(timestamp: int, nonce: str = "1514711492", token: str = TOKEN) -> dict[str, str]:
    """Signed the way WeChat documents it, written out here rather than with yijian's code."""
    parts = sorted([token, str(timestamp), nonce])
    digest = hashlib.sha1("".join(parts).encode(), usedforsecurity=False).hexdigest()
    return {"signature": digest, "timestamp": str(timestamp), "nonce": nonce}


@pytest.fixture
async def pushed(tmp_path: Path) -> AsyncIterator[Harness]:
    started = await start_harness(tmp_path, FakeClock(MONDAY_MORNING), wechat_push_token=TOKEN)
    yield started
    await stop_harness(started)


async def test_the_url_check_echoes_a_signed_request(pushed: Harness) -> None:
    now = int(pushed.clock.now().timestamp())
    answer = await pushed.client.get(
        "/api/v1/wechat/push", params={**signed(now), "echostr": "4389013762081650513"}
    )
    assert answer.status_code == 200
    assert answer.text == "4389013762081650513"


async def test_a_signed_notice_is_acknowledged(pushed: Harness) -> None:
    now = int(pushed.clock.now().timestamp())
    answer = await pushed.client.post(
        "/api/v1/wechat/push",
        params=signed(now),
        content=b"<xml><MsgType><![CDATA[event]]></MsgType></xml>",
        headers={"Content-Type": "text/xml"},
    )
    assert answer.status_code == 200
    assert answer.text == "success"


async def test_a_wrong_or_stale_signature_is_refused(pushed: Harness) -> None:
    now = int(pushed.clock.now().timestamp())
    wrong = await pushed.client.get(
        "/api/v1/wechat/push", params={**signed(now, token="guessed"), "echostr": "x"}
    )
    assert wrong.status_code == 401
    assert "signature is wrong" in wrong.json()["detail"]
    old = signed(now)
    pushed.clock.advance(timedelta(minutes=6))
    stale = await pushed.client.post("/api/v1/wechat/push", params=old)
    assert stale.status_code == 401
    assert "stale" in stale.json()["detail"]
    missing = await pushed.client.post("/api/v1/wechat/push")
    assert missing.status_code == 422


async def test_without_a_token_the_endpoint_is_off(harness: Harness) -> None:
    now = int(harness.clock.now().timestamp())
    answer = await harness.client.get("/api/v1/wechat/push", params={**signed(now), "echostr": "x"})
    assert answer.status_code == 404
    assert "YIJIAN_WECHAT_PUSH_TOKEN" in answer.json()["detail"]
