"""The mini-program backend against a fake WeChat server on 127.0.0.1.

Sign-in through jscode2session and each way it can fail, the session's "my complaints",
and the session as the citizen's key to their own complaints and nobody else's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from services.intake.store import wechat_sessions
from services.intake.wechat_session import SessionKeySeal
from tests.conftest import MONDAY_MORNING, Harness, start_harness, stop_harness
from tests.integration.fake_wechat import APPID, SECRET, FakeWeChat
from yijian.bus.sqllog import event_log
from yijian.clock import FakeClock

pytestmark = pytest.mark.integration

ALICE, BOB = "oALICE_openid_000000000001", "oBOB_openid_0000000000002"


@pytest.fixture
async def wechat() -> AsyncIterator[FakeWeChat]:
    fake = FakeWeChat(
        users={f"code-alice-{n}": ALICE for n in range(5)}
        | {f"code-bob-{n}": BOB for n in range(5)}
        | {"drop-once-carol": "oCAROL_openid_000000000003"}
    )
    await fake.start()
    yield fake
    await fake.stop()


async def wechat_harness(tmp_path: Path, fake: FakeWeChat, **overrides: Any) -> Harness:
    settings: dict[str, Any] = {
        "wechat_api_base": fake.url,
        "wechat_appid": APPID,
        "wechat_secret": SECRET,
        "wechat_timeout_seconds": 0.3,
    }
    return await start_harness(tmp_path, FakeClock(MONDAY_MORNING), **(settings | overrides))


@pytest.fixture
async def harness(tmp_path: Path, wechat: FakeWeChat) -> AsyncIterator[Harness]:
    started = await wechat_harness(tmp_path, wechat)
    yield started
    await stop_harness(started)


async def sign_in(harness: Harness, code: str) -> dict[str, str]:
    response = await harness.client.post("/api/v1/wechat/session", json={"code": code})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['session_token']}"}


async def submit_as(harness: Harness, session: dict[str, str], text: str = "路灯坏了") -> str:
    response = await harness.client.post(
        "/api/v1/complaints",
        json={
            "description": text,
            "location": {"village_code": harness.village_code},
            "category": "道路交通",
            "channel": "wechat",
        },
        headers=session,
    )
    assert response.status_code == 201, response.text
    await harness.settle()
    complaint_id: str = response.json()["id"]
    return complaint_id


async def test_sign_in_keeps_the_session_key_on_the_server(
    harness: Harness, wechat: FakeWeChat, capsys: pytest.CaptureFixture[str]
) -> None:
    response = await harness.client.post("/api/v1/wechat/session", json={"code": "code-alice-0"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"session_token", "token_type", "expires_at"}
    assert body["token_type"] == "Bearer"
    assert body["expires_at"].startswith("2026-03-03T01:00:00")  # 24 hours on
    [call] = wechat.login_calls
    assert call == {
        "appid": APPID,
        "secret": SECRET,
        "js_code": "code-alice-0",
        "grant_type": "authorization_code",
    }
    session_key = "SESSIONKEY+code-alice-0/=="
    for secret in (session_key, ALICE, SECRET):
        assert secret not in response.text
    async with harness.system.intake.database.engine.connect() as connection:
        [row] = (await connection.execute(select(wechat_sessions))).all()
    assert ALICE not in row.openid_sealed  # sealed at rest, like the contact fields
    assert (
        harness.system.intake.seal.open(
            row.token_hash, "session_openid", row.openid_sealed, row.sealed_with
        )
        == ALICE
    )
    assert body["session_token"] not in row.token_hash
    assert session_key not in row.session_key_sealed
    seal = SessionKeySeal(harness.system.settings.secret_value("citizen_secret"))
    assert seal.unseal(row.session_key_sealed, ALICE) == session_key
    with pytest.raises(Exception, match=r".*"):  # bound to its openid: no use on another row
        seal.unseal(row.session_key_sealed, BOB)
    logged = capsys.readouterr()
    for secret in (session_key, ALICE, SECRET, "code-alice-0"):
        assert secret not in logged.out + logged.err


REFUSALS = [
    ("no-such-code", 400, "wx.login", None),
    ("rate-limited", 429, "minute", "60"),
    ("busy", 503, "busy", "2"),
    ("blocked", 502, "40226", None),
]


async def test_wechat_refusals_become_clear_answers(harness: Harness) -> None:
    for code, status, reason, retry_after in REFUSALS:
        response = await harness.client.post("/api/v1/wechat/session", json={"code": code})
        assert response.status_code == status, code
        assert reason in response.json()["detail"], code
        assert response.headers.get("retry-after") == retry_after, code


async def test_a_used_code_is_refused(harness: Harness) -> None:
    await sign_in(harness, "code-alice-1")
    again = await harness.client.post("/api/v1/wechat/session", json={"code": "code-alice-1"})
    assert again.status_code == 400


async def test_a_stalled_wechat_is_a_504_after_one_retry(
    harness: Harness, wechat: FakeWeChat
) -> None:
    response = await harness.client.post("/api/v1/wechat/session", json={"code": "stall"})
    assert response.status_code == 504
    assert response.headers["retry-after"]
    assert len(wechat.login_calls) == 2


async def test_a_lost_connection_is_retried_once(harness: Harness, wechat: FakeWeChat) -> None:
    response = await harness.client.post("/api/v1/wechat/session", json={"code": "drop-once-carol"})
    assert response.status_code == 200, response.text
    assert len(wechat.login_calls) == 2


async def test_a_malformed_code_is_422(harness: Harness, wechat: FakeWeChat) -> None:
    for body in ({}, {"code": ""}, {"code": "has spaces"}, {"code": "x" * 200}):
        response = await harness.client.post("/api/v1/wechat/session", json=body)
        assert response.status_code == 422, body
    assert wechat.login_calls == []  # refused before WeChat is bothered


async def test_without_an_appid_the_feature_is_off(tmp_path: Path) -> None:
    harness = await start_harness(tmp_path, FakeClock(MONDAY_MORNING))
    try:
        response = await harness.client.post("/api/v1/wechat/session", json={"code": "abc"})
        assert response.status_code == 404
        assert "YIJIAN_WECHAT_APPID" in response.json()["detail"]
        mine = await harness.client.get("/api/v1/wechat/complaints")
        assert mine.status_code == 404
        submitted = await harness.client.post(
            "/api/v1/complaints",
            json={
                "description": "路灯坏了",
                "location": {"village_code": harness.village_code},
                "channel": "wechat",
            },
        )
        assert submitted.status_code == 400
        assert "not configured" in submitted.json()["detail"]
    finally:
        await stop_harness(harness)


async def test_my_complaints_shows_only_the_sessions_own(harness: Harness) -> None:
    alice, bob = await sign_in(harness, "code-alice-0"), await sign_in(harness, "code-bob-0")
    first = await submit_as(harness, alice, "第一件")
    harness.clock.advance(timedelta(minutes=5))
    theirs = await submit_as(harness, bob, "别人的")
    harness.clock.advance(timedelta(minutes=5))
    second = await submit_as(harness, alice, "第二件")
    await harness.submit()  # from the web form: nobody's "mine"

    listed = await harness.client.get("/api/v1/wechat/complaints", headers=alice)
    assert listed.status_code == 200
    assert [c["id"] for c in listed.json()] == [second, first]  # newest first
    assert listed.json()[0]["status"] == "assigned"
    assert ALICE not in listed.text
    limited = await harness.client.get("/api/v1/wechat/complaints?limit=1", headers=alice)
    assert [c["id"] for c in limited.json()] == [second]
    assert (
        await harness.client.get("/api/v1/wechat/complaints?limit=51", headers=alice)
    ).status_code == 422
    bobs = await harness.client.get("/api/v1/wechat/complaints", headers=bob)
    assert [c["id"] for c in bobs.json()] == [theirs]
    # A new sign-in of the same user sees the same complaints.
    again = await sign_in(harness, "code-alice-2")
    listed_again = await harness.client.get("/api/v1/wechat/complaints", headers=again)
    assert [c["id"] for c in listed_again.json()] == [second, first]


async def test_the_session_opens_its_own_complaints_and_no_others(harness: Harness) -> None:
    alice, bob = await sign_in(harness, "code-alice-0"), await sign_in(harness, "code-bob-0")
    hers = await submit_as(harness, alice)
    own = await harness.client.get(f"/api/v1/complaints/{hers}", headers=alice)
    assert own.status_code == 200
    assert own.json()["status"] == "assigned"
    for headers in (bob, {}, {"Authorization": "Bearer wx1.forged"}):
        refused = await harness.client.get(f"/api/v1/complaints/{hers}", headers=headers)
        assert refused.status_code == 404
        assert "tracking_no" not in refused.text


async def test_channel_wechat_needs_a_live_session(harness: Harness) -> None:
    body = {
        "description": "路灯坏了",
        "location": {"village_code": harness.village_code},
        "channel": "wechat",
    }
    anonymous = await harness.client.post("/api/v1/complaints", json=body)
    assert anonymous.status_code == 401
    assert "session" in anonymous.json()["detail"]
    forged = await harness.client.post(
        "/api/v1/complaints", json=body, headers={"Authorization": "Bearer wx1.not-a-session"}
    )
    assert forged.status_code == 401
    alice = await sign_in(harness, "code-alice-0")
    web = await harness.client.post(
        "/api/v1/complaints", json=body | {"channel": "web"}, headers=alice
    )
    assert web.status_code == 400

    harness.clock.advance(timedelta(hours=24, seconds=1))
    expired = await harness.client.post("/api/v1/complaints", json=body, headers=alice)
    assert expired.status_code == 401
    assert "sign in again" in expired.json()["detail"]
    mine = await harness.client.get("/api/v1/wechat/complaints", headers=alice)
    assert mine.status_code == 401


async def test_the_openid_stays_in_intake(harness: Harness) -> None:
    alice = await sign_in(harness, "code-alice-0")
    complaint = await submit_as(harness, alice)
    async with harness.sql_log.engine.connect() as connection:
        envelopes = [row.envelope for row in await connection.execute(select(event_log))]
    assert envelopes
    assert not any(ALICE in envelope for envelope in envelopes)
    submitted = next(e for e in envelopes if "complaint.submitted" in e and complaint in e)
    assert '"channel":"wechat"' in submitted.replace(" ", "")
    assert '"has_contact":true' in submitted.replace(" ", "")


async def test_notify_asks_for_the_recipient_with_the_service_token(harness: Harness) -> None:
    alice = await sign_in(harness, "code-alice-0")
    hers = await submit_as(harness, alice)
    web = (await harness.submit())["id"]
    url = f"/internal/v1/complaints/{hers}/wechat-recipient"
    assert (await harness.client.get(url)).status_code == 401
    token = harness.system.settings.secret_value("internal_token")
    service = {"Authorization": f"Bearer {token}"}
    answer = await harness.client.get(url, headers=service)
    assert answer.status_code == 200
    assert answer.json() == {"openid": ALICE}
    assert (await harness.client.get(url, headers=alice)).status_code == 401
    other = await harness.client.get(
        f"/internal/v1/complaints/{web}/wechat-recipient", headers=service
    )
    assert other.status_code == 404
