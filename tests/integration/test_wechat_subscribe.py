"""Subscribe messages (订阅消息) to mini-program citizens, against a fake WeChat server.

The message must carry the right template and data, go to the openid intake knows, and
leave no openid in notify's tables or logs; the access_token is fetched once, reused,
refreshed shortly before it expires and at once when WeChat calls it invalid.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import String, Text, select

from services.notify import store as notify_store
from services.notify.delivery_log import DeliveryRecord, list_deliveries
from services.notify.wechat_token import EARLY
from tests.conftest import MONDAY_MORNING, Harness, start_harness, stop_harness
from tests.integration.fake_wechat import APPID, SECRET, FakeWeChat
from yijian.clock import FakeClock

pytestmark = pytest.mark.integration

ALICE = "oALICE_openid_000000000001"
TEMPLATES = {
    "wechat_template_assigned": "TMPL-ASSIGNED-xyz",
    "wechat_template_replied": "TMPL-REPLIED-xyz",
    "wechat_template_resolved": "TMPL-RESOLVED-xyz",
}


@pytest.fixture
async def wechat() -> AsyncIterator[FakeWeChat]:
    fake = FakeWeChat(users={f"code-{n}": ALICE for n in range(20)})
    await fake.start()
    yield fake
    await fake.stop()


async def wechat_harness(tmp_path: Path, fake: FakeWeChat, **overrides: Any) -> Harness:
    settings: dict[str, Any] = {
        "wechat_api_base": fake.url,
        "wechat_appid": APPID,
        "wechat_secret": SECRET,
        "wechat_miniprogram_state": "trial",
        **TEMPLATES,
    }
    return await start_harness(tmp_path, FakeClock(MONDAY_MORNING), **(settings | overrides))


@pytest.fixture
async def harness(tmp_path: Path, wechat: FakeWeChat) -> AsyncIterator[Harness]:
    started = await wechat_harness(tmp_path, wechat)
    yield started
    await stop_harness(started)


class MiniProgram:
    """What the mini-program does: sign in once per complaint, submit through the session."""

    def __init__(self, harness: Harness) -> None:
        self.harness = harness
        self.codes = (f"code-{n}" for n in range(20))

    async def submit(self) -> str:
        client = self.harness.client
        signed = await client.post("/api/v1/wechat/session", json={"code": next(self.codes)})
        assert signed.status_code == 200, signed.text
        session = {"Authorization": f"Bearer {signed.json()['session_token']}"}
        response = await client.post(
            "/api/v1/complaints",
            json={
                "description": "村口路灯坏了",
                "location": {"village_code": self.harness.village_code},
                "category": "道路交通",
                "channel": "wechat",
            },
            headers=session,
        )
        assert response.status_code == 201, response.text
        await self.harness.settle()
        complaint_id: str = response.json()["id"]
        return complaint_id


async def citizen_deliveries(harness: Harness, complaint_id: str) -> list[DeliveryRecord]:
    async with harness.system.notify.database.engine.connect() as connection:
        records = await list_deliveries(
            connection, complaint_id=complaint_id, status=None, limit=50
        )
    return [r for r in records if r.recipient_key.startswith("citizen:")]


async def act(harness: Harness, complaint_id: str, action: str) -> None:
    body = {"message": "已处理"} if action in {"reply", "resolve"} else None
    response = await harness.client.post(
        f"/api/v1/complaints/{complaint_id}/{action}",
        json=body,
        headers=harness.staff(harness.village_code),
    )
    assert response.status_code == 200, response.text
    await harness.settle()


async def test_the_citizen_hears_of_assignment_reply_and_resolution(
    harness: Harness, wechat: FakeWeChat, capsys: pytest.CaptureFixture[str]
) -> None:
    complaint = await MiniProgram(harness).submit()
    for action in ("accept", "reply", "resolve"):
        await act(harness, complaint, action)

    assert [m.body["template_id"] for m in wechat.messages] == list(TEMPLATES.values())
    assigned = wechat.messages[0].body
    tracking_no = (await citizen_deliveries(harness, complaint))[0].tracking_no
    assert assigned["touser"] == ALICE
    assert assigned["page"] == f"pages/complaint/detail?id={complaint}"
    assert assigned["miniprogram_state"] == "trial"
    assert assigned["data"] == {
        "character_string1": {"value": tracking_no},
        "phrase2": {"value": "已分派"},
        "thing3": {"value": "已转交承办单位办理，请留意进展"},
        "time4": {"value": "2026-03-02 09:00"},
    }
    statuses = [m.body["data"]["phrase2"]["value"] for m in wechat.messages]
    assert statuses == ["已分派", "已答复", "已办结"]
    for message in wechat.messages:
        assert len(message.body["data"]["thing3"]["value"]) <= 20  # WeChat's thing limit
        assert len(message.body["data"]["phrase2"]["value"]) <= 5  # and phrase's

    records = await citizen_deliveries(harness, complaint)
    assert {(r.recipient_key, r.channel, r.status.value) for r in records} == {
        (f"citizen:{complaint}", "wechat", "sent")
    }
    assert len(records) == 3
    # The openid is nowhere in notify: not in any text column of any table, not in the log.
    async with harness.system.notify.database.engine.connect() as connection:
        for table in notify_store.metadata.sorted_tables:
            texts = [c for c in table.columns if isinstance(c.type, String | Text)]
            for row in await connection.execute(select(*texts)) if texts else []:
                assert ALICE not in " ".join(str(value) for value in row), table.name
    logged = capsys.readouterr()
    assert ALICE not in logged.out + logged.err
    assert "ACCESS_TOKEN" not in logged.out + logged.err


async def test_the_access_token_is_reused_until_shortly_before_it_expires(
    harness: Harness, wechat: FakeWeChat
) -> None:
    program = MiniProgram(harness)
    await program.submit()
    await program.submit()
    assert len(wechat.messages) == 2
    assert len(wechat.token_calls) == 1
    assert wechat.token_calls[0] == {
        "grant_type": "client_credential",
        "appid": APPID,
        "secret": SECRET,
        "force_refresh": False,
    }

    harness.clock.set(MONDAY_MORNING + timedelta(seconds=7200) - EARLY - timedelta(seconds=1))
    await program.submit()
    assert len(wechat.token_calls) == 1  # still good
    harness.clock.advance(timedelta(seconds=1))
    await program.submit()
    assert len(wechat.token_calls) == 2  # refreshed before WeChat's expiry
    assert [m.token for m in wechat.messages] == ["ACCESS_TOKEN_1"] * 3 + ["ACCESS_TOKEN_2"]


@pytest.mark.parametrize("refusal", ["revoked", "expired"])
async def test_a_refused_token_is_replaced_and_the_message_sent_once(
    harness: Harness, wechat: FakeWeChat, refusal: str
) -> None:
    program = MiniProgram(harness)
    await program.submit()
    # WeChat invalidates the token early (40001), or says it expired (42001).
    wechat.revoke_tokens() if refusal == "revoked" else wechat.expire_tokens()
    complaint = await program.submit()
    assert len(wechat.token_calls) == 2
    assert [m.token for m in wechat.messages] == ["ACCESS_TOKEN_1", "ACCESS_TOKEN_2"]
    [record] = await citizen_deliveries(harness, complaint)
    assert (record.status.value, record.attempts) == ("sent", 1)


async def test_a_token_refused_twice_fails_the_attempt_for_a_later_retry(
    harness: Harness, wechat: FakeWeChat
) -> None:
    wechat.always_revoke = True
    complaint = await MiniProgram(harness).submit()
    [record] = await citizen_deliveries(harness, complaint)
    assert record.status.value == "pending"
    assert record.attempts == 1
    assert record.last_error is not None
    assert "40001" in record.last_error
    assert len(wechat.token_calls) == 2  # one refresh per attempt, not a storm

    wechat.always_revoke = False
    await harness.advance(timedelta(minutes=1))
    [record] = await citizen_deliveries(harness, complaint)
    assert record.status.value == "sent"


async def test_an_unsubscribed_citizen_is_recorded_without_personal_data(
    harness: Harness, wechat: FakeWeChat
) -> None:
    wechat.send_errcodes = [43101]
    complaint = await MiniProgram(harness).submit()
    [record] = await citizen_deliveries(harness, complaint)
    assert record.last_error is not None
    assert "43101" in record.last_error
    assert ALICE not in record.last_error
    assert "ACCESS_TOKEN" not in record.last_error


async def test_a_missing_template_names_its_setting(tmp_path: Path, wechat: FakeWeChat) -> None:
    harness = await wechat_harness(tmp_path, wechat, wechat_template_replied=None)
    try:
        complaint = await MiniProgram(harness).submit()
        await act(harness, complaint, "accept")
        await act(harness, complaint, "reply")
        failed = [r for r in await citizen_deliveries(harness, complaint) if r.last_error]
        assert [r.template for r in failed] == ["citizen_replied"]
        assert "YIJIAN_WECHAT_TEMPLATE_REPLIED" in (failed[0].last_error or "")
    finally:
        await stop_harness(harness)


async def test_web_citizens_keep_the_default_channel(harness: Harness, wechat: FakeWeChat) -> None:
    complaint = (
        await harness.submit(contact={"name": "王", "phone": "13800000000"}, channel="web")
    )["id"]
    [record] = await citizen_deliveries(harness, complaint)
    assert record.channel == "log"
    assert record.status.value == "sent"
    assert wechat.messages == []


async def test_no_secret_reaches_the_logs_even_at_debug_level(
    harness: Harness, wechat: FakeWeChat, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    complaint = await MiniProgram(harness).submit()
    await act(harness, complaint, "accept")
    await act(harness, complaint, "reply")
    assert len(wechat.messages) == 2
    # The HTTP clients' own loggers (aiosqlite's DEBUG lines echo every SQL parameter and
    # are a matter for the logging setup, not for these clients).
    http = [r.getMessage() for r in caplog.records if r.name.startswith(("httpx", "httpcore"))]
    assert http  # the capture works: httpcore logged its connections
    for secret in (SECRET, "ACCESS_TOKEN", ALICE, "code-0", "SESSIONKEY"):
        assert not any(secret in line for line in http), secret
