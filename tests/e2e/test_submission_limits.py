"""Abuse limits on new complaints: per network address, phone number and WeChat user.

Each refusal is a 429 with the reason and Retry-After, and stores nothing. The counts live
in intake's database, so a restart or a second intake replica sees them too; time is moved
with the fake clock.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from services.embedded import create_app
from services.intake.domain import ComplaintIn
from services.intake.store import complaints, submission_counts
from services.intake.submission import ChannelContact
from services.intake.submission_limits import (
    DAY,
    HOUR,
    SubmissionLimited,
    network_of,
    phone_digits,
    window_start,
)
from tests.conftest import MONDAY_MORNING, Harness, start_harness, stop_harness
from yijian.clock import FakeClock

PHONE = "138 1234-5678"


@pytest.fixture
async def limited(tmp_path: Path) -> AsyncIterator[Harness]:
    started = await start_harness(
        tmp_path,
        FakeClock(MONDAY_MORNING),
        submissions_per_ip_per_hour=3,
        submissions_per_phone_per_day=2,
        submissions_per_openid_per_day=2,
        submission_limit_exempt="",
        open311_api_keys="county-key",
    )
    yield started
    await stop_harness(started)


def complaint(harness: Harness, phone: str | None = PHONE) -> dict[str, Any]:
    body: dict[str, Any] = {
        "description": "路灯坏了",
        "location": {"village_code": harness.village_code},
        "category": "道路交通",
    }
    if phone is not None:
        body["contact"] = {"phone": phone}
    return body


def client_from(harness: Harness, address: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(
        app=create_app(harness.system, background=False), client=(address, 40_000)
    )
    return httpx.AsyncClient(transport=transport, base_url="http://yijian.test")


async def stored(harness: Harness) -> int:
    async with harness.system.intake.database.engine.connect() as connection:
        return int(await connection.scalar(select(func.count()).select_from(complaints)) or 0)


async def test_a_phone_number_may_file_a_few_a_day(limited: Harness) -> None:
    client = limited.client
    for _ in range(2):
        assert (await client.post("/api/v1/complaints", json=complaint(limited))).status_code == 201
    # The same number written another way is the same phone.
    refused = await client.post("/api/v1/complaints", json=complaint(limited, "+86 13812345678"))
    assert refused.status_code == 429
    assert "phone number" in refused.json()["detail"]
    # Monday 09:00 in Beijing: the Beijing day ends in 15 hours.
    assert int(refused.headers["Retry-After"]) == 15 * 3600
    assert await stored(limited) == 2
    other = await client.post("/api/v1/complaints", json=complaint(limited, "13900000000"))
    assert other.status_code == 201

    limited.clock.advance(timedelta(hours=15))  # Beijing midnight: a new day
    again = await client.post("/api/v1/complaints", json=complaint(limited))
    assert again.status_code == 201, again.text


async def test_a_network_address_may_file_a_few_an_hour(limited: Harness) -> None:
    async with (
        client_from(limited, "203.0.113.7") as one,
        client_from(limited, "2001:db8::1") as six,
    ):
        for n in range(3):
            answer = await one.post("/api/v1/complaints", json=complaint(limited, f"1390000000{n}"))
            assert answer.status_code == 201
        refused = await one.post("/api/v1/complaints", json=complaint(limited, None))
        assert refused.status_code == 429
        assert "network address" in refused.json()["detail"]
        assert 0 < int(refused.headers["Retry-After"]) <= 3600
        # Another address is another sender.
        assert (
            await six.post("/api/v1/complaints", json=complaint(limited, None))
        ).status_code == 201
        limited.clock.advance(timedelta(hours=1))
        assert (
            await one.post("/api/v1/complaints", json=complaint(limited, None))
        ).status_code == 201


async def test_this_machine_is_exempt_from_the_address_limit_by_default(
    tmp_path: Path,
) -> None:
    harness = await start_harness(
        tmp_path, FakeClock(MONDAY_MORNING), submissions_per_ip_per_hour=1
    )
    try:
        for _ in range(3):  # the test client comes from 127.0.0.1
            await harness.submit()
        async with client_from(harness, "198.51.100.20") as remote:
            assert (
                await remote.post("/api/v1/complaints", json=complaint(harness, None))
            ).status_code == 201
            assert (
                await remote.post("/api/v1/complaints", json=complaint(harness, None))
            ).status_code == 429
    finally:
        await stop_harness(harness)


async def test_a_retry_with_the_same_key_is_not_counted_again(limited: Harness) -> None:
    headers = {"Idempotency-Key": "phone-retry-1"}
    for _ in range(3):
        answer = await limited.client.post(
            "/api/v1/complaints", json=complaint(limited), headers=headers
        )
        assert answer.status_code == 201
    assert (
        await limited.client.post("/api/v1/complaints", json=complaint(limited))
    ).status_code == 201
    assert await stored(limited) == 2


async def test_a_wechat_user_may_file_a_few_a_day(limited: Harness) -> None:
    submissions = limited.system.intake.submissions
    body = ComplaintIn.model_validate(complaint(limited, None) | {"channel": "wechat"})
    alice = ChannelContact(wechat_openid="oALICE_openid")
    for _ in range(2):
        await submissions.submit(body, None, alice)
    with pytest.raises(SubmissionLimited) as refused:
        await submissions.submit(body, None, alice)
    assert "WeChat user" in refused.value.reason
    await submissions.submit(body, None, ChannelContact(wechat_openid="oBOB_openid"))


async def test_replicas_and_restarts_share_the_counts(limited: Harness, tmp_path: Path) -> None:
    for _ in range(2):
        assert (
            await limited.client.post("/api/v1/complaints", json=complaint(limited))
        ).status_code == 201
    # A second intake on the same database: another replica, or this one restarted.
    replica = await start_harness(
        tmp_path,
        limited.clock,
        submissions_per_phone_per_day=2,
        submission_limit_exempt="",
    )
    try:
        refused = await replica.client.post("/api/v1/complaints", json=complaint(replica))
        assert refused.status_code == 429
    finally:
        await stop_harness(replica)


async def test_open311_requests_are_limited_by_phone_in_its_error_format(
    limited: Harness,
) -> None:
    form = {
        "api_key": "county-key",
        "service_code": "roads-traffic",
        "description": "路灯坏了",
        "phone": PHONE,
        "attribute[village_code]": limited.village_code,
    }
    for _ in range(2):
        answer = await limited.client.post("/open311/v2/requests.json", data=form)
        assert answer.status_code == 200, answer.text
    refused = await limited.client.post("/open311/v2/requests.json", data=form)
    assert refused.status_code == 429
    assert refused.json()[0]["code"] == 429
    assert "phone number" in refused.json()[0]["description"]
    assert int(refused.headers["Retry-After"]) > 0


async def test_the_counters_hold_no_personal_data_and_old_ones_are_swept(
    limited: Harness,
) -> None:
    async with client_from(limited, "203.0.113.9") as remote:
        assert (await remote.post("/api/v1/complaints", json=complaint(limited))).status_code == 201
    engine = limited.system.intake.database.engine
    async with engine.connect() as connection:
        subjects = (await connection.scalars(select(submission_counts.c.subject))).all()
    assert sorted(s.split(":")[0] for s in subjects) == ["ip", "phone"]
    assert not any("13812345678" in s or "203.0.113" in s for s in subjects)

    await limited.advance(timedelta(days=3))
    async with engine.connect() as connection:
        left = await connection.scalar(select(func.count()).select_from(submission_counts))
    assert left == 0


def test_windows_start_at_beijing_midnight_and_on_the_hour() -> None:
    late_evening = datetime(2026, 3, 2, 15, 59, tzinfo=UTC)  # 23:59 in Beijing
    assert window_start(late_evening, DAY) == datetime(2026, 3, 1, 16, 0, tzinfo=UTC)
    assert window_start(late_evening + timedelta(minutes=1), DAY) == datetime(
        2026, 3, 2, 16, 0, tzinfo=UTC
    )
    assert window_start(late_evening, HOUR) == datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


def test_senders_are_recognised_however_they_are_written() -> None:
    assert phone_digits("+86 138-1234-5678") == phone_digits("13812345678") == "13812345678"
    assert phone_digits("  ") is None
    assert network_of("2001:db8::1") == network_of("2001:db8::ffff") == "2001:db8::/64"
    assert network_of("::ffff:203.0.113.7") == "203.0.113.7"
    assert network_of("not an address") is None
