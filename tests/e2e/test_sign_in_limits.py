"""Staff sign-in: guessing is bounded per account and per address; keys rotate in place.

Failures are counted in routing's database (a second replica or a restart sees them), a
lockout is a 429 with the reason and Retry-After, and the fake clock ends it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from services.embedded import create_app
from services.routing.users import Role
from tests.conftest import MONDAY_MORNING, Harness, start_harness, stop_harness
from yijian.clock import FakeClock

PASSWORD = "correct horse battery"


@pytest.fixture
async def guarded(tmp_path: Path) -> AsyncIterator[Harness]:
    started = await start_harness(
        tmp_path,
        FakeClock(MONDAY_MORNING),
        login_failures_per_account=3,
        login_failures_per_ip=5,
        login_lockout_minutes=15,
    )
    for name in ("zhang", "li", "wang"):
        await started.system.routing.users.add(
            name, started.village_code, Role.STAFF, PASSWORD, must_change_password=False
        )
    yield started
    await stop_harness(started)


async def sign_in(
    client: httpx.AsyncClient, username: str, password: str = PASSWORD
) -> httpx.Response:
    return await client.post(
        "/api/v1/staff/login", json={"username": username, "password": password}
    )


def client_from(harness: Harness, address: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(
        app=create_app(harness.system, background=False), client=(address, 50_000)
    )
    return httpx.AsyncClient(transport=transport, base_url="http://yijian.test")


async def test_an_account_is_locked_after_a_few_failures_then_unlocked_by_time(
    guarded: Harness,
) -> None:
    client = guarded.client
    for _ in range(3):
        assert (await sign_in(client, "zhang", "wrong password")).status_code == 401
    locked = await sign_in(client, "zhang")  # even the right password waits
    assert locked.status_code == 429
    assert "this account" in locked.json()["detail"]
    assert int(locked.headers["Retry-After"]) == 15 * 60
    assert "token" not in locked.json()
    assert (await sign_in(client, "li")).status_code == 200  # others are not affected

    guarded.clock.advance(timedelta(minutes=10))
    assert int((await sign_in(client, "zhang")).headers["Retry-After"]) == 5 * 60
    guarded.clock.advance(timedelta(minutes=5))
    assert (await sign_in(client, "zhang")).status_code == 200

    entries = await guarded.system.routing.audit.entries()
    outcomes = [e["outcome"] for e in reversed(entries) if e["username"] == "zhang"]
    assert outcomes == ["failed", "failed", "failed", "locked", "locked", "ok"]


async def test_a_success_clears_the_accounts_count(guarded: Harness) -> None:
    for _ in range(2):
        assert (await sign_in(guarded.client, "zhang", "wrong password")).status_code == 401
    assert (await sign_in(guarded.client, "zhang")).status_code == 200
    for _ in range(2):
        assert (await sign_in(guarded.client, "zhang", "wrong password")).status_code == 401
    assert (await sign_in(guarded.client, "zhang")).status_code == 200


async def test_one_address_guessing_many_accounts_is_stopped(guarded: Harness) -> None:
    async with (
        client_from(guarded, "203.0.113.50") as guesser,
        client_from(guarded, "198.51.100.7") as office,
    ):
        for name in ("zhang", "li", "wang", "nobody", "zhang"):
            assert (await sign_in(guesser, name, "wrong password")).status_code == 401
        refused = await sign_in(guesser, "li")
        assert refused.status_code == 429
        assert "this address" in refused.json()["detail"]
        assert int(refused.headers["Retry-After"]) > 0
        # li signs in from the office; the lock is on the guesser's address.
        assert (await sign_in(office, "li")).status_code == 200


async def test_a_second_replica_sees_the_lockout(guarded: Harness, tmp_path: Path) -> None:
    for _ in range(3):
        assert (await sign_in(guarded.client, "wang", "wrong password")).status_code == 401
    replica = await start_harness(tmp_path, guarded.clock, login_failures_per_account=3)
    try:
        assert (await sign_in(replica.client, "wang")).status_code == 429
    finally:
        await stop_harness(replica)


async def test_tokens_survive_a_rotation_of_the_signing_key(tmp_path: Path) -> None:
    clock = FakeClock(MONDAY_MORNING)
    old_key = "signing-key-of-last-year-long-enough-32b"
    before = await start_harness(tmp_path, clock, auth_secret=old_key)
    token = before.system.routing.tokens.issue("zhang", before.village_code)
    await stop_harness(before)

    rotated = await start_harness(
        tmp_path,
        clock,
        auth_secret="signing-key-of-this-year-long-enough-32",
        auth_previous_secrets=old_key,
    )
    try:
        assert (
            await rotated.client.get("/api/v1/cases", headers={"Authorization": f"Bearer {token}"})
        ).status_code == 200
    finally:
        await stop_harness(rotated)
    dropped = await start_harness(
        tmp_path, clock, auth_secret="signing-key-of-this-year-long-enough-32"
    )
    try:
        answer = await dropped.client.get(
            "/api/v1/cases", headers={"Authorization": f"Bearer {token}"}
        )
        assert answer.status_code == 401
    finally:
        await stop_harness(dropped)
