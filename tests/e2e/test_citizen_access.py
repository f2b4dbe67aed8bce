"""A citizen sees only their own complaints: the token from submit, or tracking no. + phone."""

from __future__ import annotations

import stat
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi import Request
from pydantic import SecretStr
from sqlalchemy import select

from services.intake.store import submission_counts
from tests.conftest import MONDAY_MORNING, Harness, make_settings, start_harness, stop_harness
from yijian.clock import FakeClock

counts = submission_counts.c

PHONE = "139-1234-5678"


async def citizen_get(harness: Harness, complaint_id: str, **headers: str) -> tuple[int, str]:
    response = await harness.client.get(f"/api/v1/complaints/{complaint_id}", headers=headers)
    return response.status_code, response.text


async def test_submit_hands_back_a_token_that_opens_that_complaint_only(harness: Harness) -> None:
    mine = await harness.submit()
    theirs = await harness.submit(description="邻居家狗夜里一直叫")
    token = mine["citizen_token"]

    assert (await citizen_get(harness, mine["id"], authorization=f"Bearer {token}"))[0] == 200
    assert (await citizen_get(harness, mine["id"], **{"X-Citizen-Token": token}))[0] == 200

    refused = [
        await citizen_get(harness, mine["id"]),  # no credential at all
        await citizen_get(harness, theirs["id"], authorization=f"Bearer {token}"),
        await citizen_get(harness, mine["id"], authorization=f"Bearer {token[:-1]}x"),
        await citizen_get(harness, mine["id"], **harness.staff(harness.village_code)),
        await citizen_get(harness, "0" * 32, authorization=f"Bearer {token}"),
    ]
    # 404 like a complaint that does not exist, and the very same body: no oracle.
    assert {status for status, _ in refused} == {404}
    assert len({body for _, body in refused}) == 1


async def test_tokens_depend_on_the_secret_and_survive_a_restart(
    harness: Harness, tmp_path: Path
) -> None:
    submitted = await harness.submit()
    token = submitted["citizen_token"]
    secret_file = harness.data_dir / "citizen-secret"
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600

    restarted = await start_harness(harness.data_dir, harness.clock)
    try:
        status, _ = await citizen_get(restarted, submitted["id"], authorization=f"Bearer {token}")
        assert status == 200
    finally:
        await stop_harness(restarted)

    elsewhere = await start_harness(tmp_path / "other", harness.clock, citizen_secret="x" * 40)
    try:
        assert elsewhere.system.intake.citizen_access.tokens.issue(submitted["id"]) != token
    finally:
        await stop_harness(elsewhere)


def test_secret_settings_come_from_the_environment_or_a_private_file(tmp_path: Path) -> None:
    given = make_settings(tmp_path, internal_token=SecretStr("from-the-environment"))
    assert given.secret_value("internal_token") == "from-the-environment"
    assert not (tmp_path / "internal-token").exists()

    kept = make_settings(tmp_path)
    first = kept.secret_value("citizen_secret")
    assert len(first) >= 40
    assert make_settings(tmp_path).secret_value("citizen_secret") == first
    assert kept.secret_value("internal_token") != first  # one file per secret
    with pytest.raises(TypeError):
        kept.secret_value("data_dir")


async def test_lookup_by_tracking_number_and_last_four_digits(harness: Harness) -> None:
    submitted = await harness.submit(contact={"phone": PHONE})
    response = await harness.client.post(
        "/api/v1/complaints/lookup",
        json={"tracking_no": submitted["tracking_no"].lower(), "phone_last4": "5678"},
    )
    assert response.status_code == 200, response.text
    found = response.json()
    assert found["id"] == submitted["id"]
    assert found["tracking_no"] == submitted["tracking_no"]
    assert response.headers["Cache-Control"] == "no-store"
    status, _ = await citizen_get(
        harness, found["id"], authorization=f"Bearer {found['citizen_token']}"
    )
    assert status == 200


async def test_a_failed_lookup_is_one_uniform_404(harness: Harness) -> None:
    with_phone = await harness.submit(contact={"phone": PHONE})
    without_phone = await harness.submit(contact={"name": "王"})
    attempts = [
        (with_phone["tracking_no"], "1234"),  # wrong digits
        (with_phone["tracking_no"], "1234"[::-1]),
        (without_phone["tracking_no"], "5678"),  # no phone given: cannot be looked up
        ("GZ260302-ZZZZZZ", "5678"),  # no such complaint
    ]
    answers = []
    for tracking_no, last4 in attempts:
        response = await harness.client.post(
            "/api/v1/complaints/lookup", json={"tracking_no": tracking_no, "phone_last4": last4}
        )
        answers.append((response.status_code, response.text))
    assert {status for status, _ in answers} == {404}
    assert len({body for _, body in answers}) == 1
    assert "citizen_token" not in answers[0][1]


@pytest.mark.parametrize(
    "body",
    [
        {"tracking_no": "GZ260302-7K3Q9M", "phone_last4": "56"},
        {"tracking_no": "GZ260302-7K3Q9M", "phone_last4": "abcd"},
        {"tracking_no": "../../etc/passwd", "phone_last4": "5678"},
        {"tracking_no": "GZ260302-7K3Q9M"},
    ],
)
async def test_a_malformed_lookup_is_422_with_a_reason(
    harness: Harness, body: dict[str, str]
) -> None:
    response = await harness.client.post("/api/v1/complaints/lookup", json=body)
    assert response.status_code == 422
    assert response.json()["detail"]


async def test_guessing_the_last_four_digits_is_stopped(harness: Harness) -> None:
    submitted = await harness.submit(contact={"phone": PHONE})

    async def guess(tracking_no: str, last4: str) -> int:
        response = await harness.client.post(
            "/api/v1/complaints/lookup", json={"tracking_no": tracking_no, "phone_last4": last4}
        )
        if response.status_code == 429:
            assert int(response.headers["Retry-After"]) > 0
        return response.status_code

    for wrong in ("0000", "0001", "0002", "0003", "0004"):
        assert await guess(submitted["tracking_no"], wrong) == 404
    # Locked now, even for the right digits: a guesser cannot tell a hit.
    assert await guess(submitted["tracking_no"], "5678") == 429
    # Numbers that do not exist lock the same way, so the lock is no oracle either.
    for wrong in ("0000", "0001", "0002", "0003", "0004"):
        assert await guess("GZ260302-ZZZZZZ", wrong) == 404
    assert await guess("GZ260302-ZZZZZZ", "0005") == 429

    harness.clock.advance(timedelta(minutes=16))
    assert await guess(submitted["tracking_no"], "5678") == 200


async def test_a_restart_or_another_replica_does_not_reset_the_guessing_limit(
    tmp_path: Path,
) -> None:
    clock = FakeClock(MONDAY_MORNING)

    async def guess(on: Harness, tracking_no: str, last4: str) -> int:
        response = await on.client.post(
            "/api/v1/complaints/lookup", json={"tracking_no": tracking_no, "phone_last4": last4}
        )
        return response.status_code

    first = await start_harness(tmp_path, clock)
    try:
        tracking_no = (await first.submit(contact={"phone": PHONE}))["tracking_no"]
        for wrong in ("0000", "0001", "0002"):
            assert await guess(first, tracking_no, wrong) == 404
        # A right answer does not count against the number, however often it is given.
        for _ in range(4):
            assert await guess(first, tracking_no, "5678") == 200
        # A second process on the same database (a replica) sees the misses so far.
        replica = await start_harness(tmp_path, clock)
        try:
            assert await guess(replica, tracking_no, "0003") == 404
        finally:
            await stop_harness(replica)
    finally:
        await stop_harness(first)

    restarted = await start_harness(tmp_path, clock)
    try:
        assert await guess(restarted, tracking_no, "0004") == 404  # the fifth miss
        assert await guess(restarted, tracking_no, "5678") == 429
        async with restarted.system.intake.database.engine.connect() as connection:
            subjects = [row.subject for row in await connection.execute(select(counts.subject))]
        assert [s for s in subjects if s.startswith("lookup:")]
        assert not [s for s in subjects if tracking_no in s]  # a keyed digest, not the number
        clock.advance(timedelta(minutes=16))
        assert await guess(restarted, tracking_no, "5678") == 200
    finally:
        await stop_harness(restarted)


async def test_a_channel_can_add_its_own_proof_of_ownership(harness: Harness) -> None:
    """How the WeChat module plugs in "this openid filed it" without touching intake's code."""
    submitted = await harness.submit()

    class SharedSecretHeader:
        async def opens(self, request: Request, complaint_id: str) -> bool:
            return request.headers.get("X-Test-Owner") == complaint_id

    harness.system.intake.citizen_access.add(SharedSecretHeader())
    ok, _ = await citizen_get(harness, submitted["id"], **{"X-Test-Owner": submitted["id"]})
    assert ok == 200
    refused, _ = await citizen_get(harness, submitted["id"], **{"X-Test-Owner": "someone"})
    assert refused == 404


async def test_the_internal_api_needs_the_service_token(harness: Harness) -> None:
    submitted = await harness.submit(
        contact={"name": "张小明", "phone": PHONE},
        location={"village_code": harness.village_code, "address": "幸福路88号"},
    )
    url = f"/internal/v1/complaints/{submitted['id']}"
    assert (await harness.client.get(url)).status_code == 401
    wrong = await harness.client.get(url, headers={"Authorization": "Bearer not-it"})
    assert wrong.status_code == 401
    citizen = await harness.client.get(url, headers=harness.citizen(submitted["id"]))
    assert citizen.status_code == 401
    staff = await harness.client.get(url, headers=harness.staff(harness.village_code))
    assert staff.status_code == 401

    service = {"Authorization": f"Bearer {harness.system.settings.secret_value('internal_token')}"}
    response = await harness.client.get(url, headers=service)
    assert response.status_code == 200, response.text
    record = response.json()
    assert record["id"] == submitted["id"]
    assert record["tracking_no"] == submitted["tracking_no"]
    assert record["description"] == "村口路灯坏了三天，晚上看不清路"
    assert record["category"] == "道路交通"
    assert (record["channel"], record["urgency"]) == ("web", "normal")
    assert record["location"]["village_code"] == harness.village_code
    assert record["location"]["address"] == "幸福路88号"
    assert record["contact"] == {"name": "张小明", "phone": PHONE}
    assert record["photos"] == []
    assert record["rating"] is None

    anonymous = await harness.submit()
    response = await harness.client.get(
        f"/internal/v1/complaints/{anonymous['id']}", headers=service
    )
    assert response.json()["contact"] is None
    missing = await harness.client.get("/internal/v1/complaints/" + "0" * 32, headers=service)
    assert missing.status_code == 404
