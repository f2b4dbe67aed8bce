"""A mini-program sign-in keeps no openid in clear: the sessions table holds it sealed with
the contact key, like the contacts, and "my complaints" still finds the user's complaints.

WeChat is the fake server the integration tests use (a real HTTP server on 127.0.0.1).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from services.intake.store import wechat_sessions
from tests.conftest import MONDAY_MORNING, Harness, start_harness, stop_harness
from tests.e2e.test_personal_data import every_row, raw_bytes
from tests.integration.fake_wechat import APPID, SECRET, FakeWeChat
from yijian.clock import FakeClock

ALICE, BOB = "oALICE_openid_000000000001", "oBOB_openid_0000000000002"


@pytest.fixture
async def wechat() -> AsyncIterator[FakeWeChat]:
    fake = FakeWeChat(users={f"code-alice-{n}": ALICE for n in range(3)} | {"code-bob-0": BOB})
    await fake.start()
    yield fake
    await fake.stop()


def wechat_settings(fake: FakeWeChat, **overrides: Any) -> dict[str, Any]:
    return {
        "wechat_api_base": fake.url,
        "wechat_appid": APPID,
        "wechat_secret": SECRET,
        "wechat_timeout_seconds": 2.0,
    } | overrides


@pytest.fixture
async def harness(tmp_path: Path, wechat: FakeWeChat) -> AsyncIterator[Harness]:
    started = await start_harness(tmp_path, FakeClock(MONDAY_MORNING), **wechat_settings(wechat))
    yield started
    await stop_harness(started)


async def sign_in(harness: Harness, code: str) -> dict[str, str]:
    response = await harness.client.post("/api/v1/wechat/session", json={"code": code})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['session_token']}"}


async def submit_as(harness: Harness, session: dict[str, str]) -> str:
    response = await harness.client.post(
        "/api/v1/complaints",
        json={
            "description": "路灯坏了",
            "location": {"village_code": harness.village_code},
            "channel": "wechat",
        },
        headers=session,
    )
    assert response.status_code == 201, response.text
    await harness.settle()
    complaint: str = response.json()["id"]
    return complaint


async def my_complaints(harness: Harness, session: dict[str, str]) -> list[str]:
    response = await harness.client.get("/api/v1/wechat/complaints", headers=session)
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()]


async def test_the_sessions_table_holds_no_openid(harness: Harness) -> None:
    alice = await sign_in(harness, "code-alice-0")
    bob = await sign_in(harness, "code-bob-0")
    hers = await submit_as(harness, alice)
    his = await submit_as(harness, bob)

    # "My complaints" and the citizen view work through the sealed session.
    assert await my_complaints(harness, alice) == [hers]
    assert await my_complaints(harness, bob) == [his]
    view = await harness.client.get(f"/api/v1/complaints/{hers}", headers=alice)
    assert view.status_code == 200
    assert (await harness.client.get(f"/api/v1/complaints/{his}", headers=alice)).status_code == 404

    engine = harness.system.intake.database.engine
    async with engine.connect() as connection:
        rows = (await connection.execute(select(wechat_sessions))).all()
    assert len(rows) == 2
    assert {row.sealed_with for row in rows} == {harness.system.intake.seal.key_id}
    table = await every_row(engine)
    assert "oALICE" not in table
    assert "oBOB" not in table
    assert hers in table  # the search would find what it looks for
    for name, content in raw_bytes(harness.data_dir).items():
        assert ALICE.encode() not in content, name
        assert BOB.encode() not in content, name


async def test_a_sealed_openid_moved_to_another_session_does_not_sign_in(
    harness: Harness,
) -> None:
    alice = await sign_in(harness, "code-alice-0")
    bob = await sign_in(harness, "code-bob-0")
    await submit_as(harness, alice)
    engine = harness.system.intake.database.engine
    async with engine.begin() as connection:
        kept, overwritten = (await connection.execute(select(wechat_sessions))).all()
        await connection.execute(
            update(wechat_sessions)
            .where(wechat_sessions.c.token_hash == overwritten.token_hash)
            .values(openid_sealed=kept.openid_sealed)
        )
    # The overwritten session now reads as signed out, not as the other user.
    answers = [
        (await harness.client.get("/api/v1/wechat/complaints", headers=who)).status_code
        for who in (alice, bob)
    ]
    assert sorted(answers) == [200, 401]


async def test_sessions_sealed_under_a_key_since_removed_sign_in_again(
    tmp_path: Path, wechat: FakeWeChat
) -> None:
    clock = FakeClock(MONDAY_MORNING)
    old, new = "contact-key-2025-" + "a" * 32, "contact-key-2026-" + "b" * 32
    first = await start_harness(tmp_path, clock, **wechat_settings(wechat, contact_key=old))
    try:
        alice = await sign_in(first, "code-alice-0")
        complaint = await submit_as(first, alice)
    finally:
        await stop_harness(first)

    rotated = await start_harness(
        tmp_path, clock, **wechat_settings(wechat, contact_key=new, contact_previous_keys=old)
    )
    try:
        assert await my_complaints(rotated, alice) == [complaint]  # the old key still opens
    finally:
        await stop_harness(rotated)

    only_new = await start_harness(tmp_path, clock, **wechat_settings(wechat, contact_key=new))
    try:
        gone = await only_new.client.get("/api/v1/wechat/complaints", headers=alice)
        assert gone.status_code == 401
        assert "sign in again" in gone.json()["detail"]
        again = await sign_in(only_new, "code-alice-1")
        assert await my_complaints(only_new, again) == [complaint]
    finally:
        await stop_harness(only_new)
