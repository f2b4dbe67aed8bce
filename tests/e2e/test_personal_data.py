"""Contact data is sealed at rest and never leaks into logs, events, other databases or metrics.

Known phone numbers, a name and an address are seeded; then the raw database files (with
their write-ahead logs), every table of every database, the captured logs and the metrics
are searched for them.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from sqlalchemy import insert, inspect, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from services.intake.contacts import ContactSeal, contact_of
from services.intake.store import contacts
from services.routing.users import Role
from tests.conftest import MONDAY_MORNING, Harness, start_harness, stop_harness
from yijian.clock import FakeClock

PHONE = "13987654321"
OTHER_PHONE = "15811112222"
NAME = "欧阳娜娜"
ADDRESS = "渊泉镇柳树巷17号"
SECRETS = (PHONE, OTHER_PHONE, NAME, ADDRESS, "87654321")


def raw_bytes(data_dir: Path) -> dict[str, bytes]:
    """Every database file and write-ahead log in the data folder, as stored on disk."""
    return {
        path.name: path.read_bytes()
        for path in sorted(data_dir.iterdir())
        if path.is_file() and (path.suffix == ".db" or path.name.endswith(("-wal", "-journal")))
    }


async def every_row(engine: AsyncEngine) -> str:
    """All rows of all tables of one database, as one text to search."""
    async with engine.connect() as connection:
        names = await connection.run_sync(lambda sync: inspect(sync).get_table_names())
        found: list[str] = []
        for name in names:
            rows = await connection.execute(text(f'SELECT * FROM "{name}"'))
            found.extend(repr(tuple(row)) for row in rows)
    return "\n".join(found)


def seal_of(harness: Harness) -> ContactSeal:
    return harness.system.intake.seal


async def test_the_raw_database_never_holds_the_phone_name_or_address(harness: Harness) -> None:
    submitted = await harness.submit(
        contact={"name": NAME, "phone": PHONE},
        location={"village_code": harness.village_code, "address": ADDRESS},
    )
    await harness.settle()
    files = raw_bytes(harness.data_dir)
    assert "intake.db" in files
    for name, content in files.items():
        for secret in SECRETS:
            assert secret.encode() not in content, (name, secret)

    async with harness.system.intake.database.engine.connect() as connection:
        row = (
            await connection.execute(
                select(contacts).where(contacts.c.complaint_id == submitted["id"])
            )
        ).one()
        assert row.sealed_with == seal_of(harness).key_id
        assert PHONE not in row.phone
        assert NAME not in row.name
        opened = await contact_of(connection, seal_of(harness), submitted["id"])
    assert opened is not None
    assert (opened.phone, opened.name) == (PHONE, NAME)

    # Finding it again by tracking number and the last four digits still works.
    found = await harness.client.post(
        "/api/v1/complaints/lookup",
        json={"tracking_no": submitted["tracking_no"], "phone_last4": "4321"},
    )
    assert found.status_code == 200
    assert found.json()["id"] == submitted["id"]


async def test_a_sealed_value_moved_to_another_complaint_does_not_open(harness: Harness) -> None:
    first = await harness.submit(contact={"phone": PHONE})
    second = await harness.submit(contact={"phone": OTHER_PHONE})
    engine = harness.system.intake.database.engine
    async with engine.begin() as connection:
        sealed = await connection.scalar(
            select(contacts.c.phone).where(contacts.c.complaint_id == first["id"])
        )
        await connection.execute(
            update(contacts).where(contacts.c.complaint_id == second["id"]).values(phone=sealed)
        )
    # The copy fails to open: the lookup cannot be fooled into matching the first phone.
    with pytest.raises(Exception, match="does not open"):
        async with engine.connect() as connection:
            await contact_of(connection, seal_of(harness), second["id"])


async def test_a_complaints_whole_life_leaks_no_contact_data(
    harness: Harness, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    submitted = await harness.submit(
        contact={"name": NAME, "phone": PHONE},
        location={"village_code": harness.village_code, "address": ADDRESS},
    )
    other = await harness.submit(contact={"phone": OTHER_PHONE})
    complaint = submitted["id"]
    village = harness.staff(harness.village_code)
    for action, body in (
        ("accept", None),
        ("reply", {"message": "已安排电工"}),
        ("resolve", {"message": "路灯已修好"}),
    ):
        answer = await harness.client.post(
            f"/api/v1/complaints/{complaint}/{action}", json=body, headers=village
        )
        assert answer.status_code == 200, answer.text
    await harness.settle()
    rated = await harness.client.post(
        f"/api/v1/complaints/{complaint}/rating",
        json={"rating": "satisfied"},
        headers=harness.citizen(complaint),
    )
    assert rated.status_code == 200, rated.text
    # A supervisor reveals the contact (the one place it may be shown), then the case ends.
    supervisor = harness.system.routing.tokens.issue(
        "chief", harness.township_code, Role.SUPERVISOR
    )
    revealed = await harness.client.post(
        f"/api/v1/cases/{complaint}/contact", headers={"Authorization": f"Bearer {supervisor}"}
    )
    assert revealed.status_code == 200, revealed.text
    assert PHONE in revealed.text  # shown to the supervisor who asked, and only there
    closing: list[tuple[str, dict[str, object] | None]] = [
        ("visit", {"note": "群众满意", "satisfied": True}),
        ("close", None),
    ]
    for step, payload in closing:
        answer = await harness.client.post(
            f"/api/v1/complaints/{complaint}/{step}", json=payload, headers=village
        )
        assert answer.status_code == 200, answer.text
    await harness.settle()
    metrics = (await harness.client.get("/metrics")).text
    await harness.settle()

    logs = capsys.readouterr()
    logged = logs.out + logs.err + caplog.text
    assert submitted["tracking_no"] in logged  # the capture works: notices were logged
    stores = {
        "eventlog": harness.sql_log.engine,
        **{service.name: service.database.engine for service in harness.system.runtime.services},
    }
    dumps = {name: await every_row(engine) for name, engine in stores.items()}
    assert other["id"] in dumps["eventlog"]
    assert complaint in dumps["routing"]
    for secret in SECRETS:
        assert secret not in logged, secret
        assert secret not in metrics, secret
        for name, dump in dumps.items():
            assert secret not in dump, (name, secret)
    for name, content in raw_bytes(harness.data_dir).items():
        for secret in SECRETS:
            assert secret.encode() not in content, (name, secret)


async def test_rows_from_before_sealing_are_sealed_when_intake_starts(tmp_path: Path) -> None:
    clock = FakeClock(MONDAY_MORNING)
    harness = await start_harness(tmp_path, clock)
    submitted = await harness.submit()  # no contact: a plain row is written below
    async with harness.system.intake.database.engine.begin() as connection:
        await connection.execute(
            insert(contacts).values(
                complaint_id=submitted["id"], name=NAME, phone=PHONE, sealed_with=None
            )
        )
    await stop_harness(harness)

    restarted = await start_harness(tmp_path, clock)
    try:
        async with restarted.system.intake.database.engine.connect() as connection:
            row = (
                await connection.execute(
                    select(contacts).where(contacts.c.complaint_id == submitted["id"])
                )
            ).one()
            assert row.sealed_with == seal_of(restarted).key_id
            assert row.phone != PHONE
            opened = await contact_of(connection, seal_of(restarted), submitted["id"])
        assert opened is not None
        assert opened.phone == PHONE
    finally:
        await stop_harness(restarted)


async def test_rotating_the_contact_key_reseals_every_row(tmp_path: Path) -> None:
    clock = FakeClock(MONDAY_MORNING)
    old, new = "contact-key-2025-" + "a" * 32, "contact-key-2026-" + "b" * 32
    harness = await start_harness(tmp_path, clock, contact_key=old)
    submitted = await harness.submit(contact={"phone": PHONE})
    old_id = seal_of(harness).key_id
    await stop_harness(harness)

    rotated = await start_harness(tmp_path, clock, contact_key=new, contact_previous_keys=old)
    try:
        assert seal_of(rotated).key_id != old_id
        async with rotated.system.intake.database.engine.connect() as connection:
            sealed_with = await connection.scalar(
                select(contacts.c.sealed_with).where(contacts.c.complaint_id == submitted["id"])
            )
        assert sealed_with == seal_of(rotated).key_id
    finally:
        await stop_harness(rotated)

    # Once resealed, the old key can go.
    only_new = await start_harness(tmp_path, clock, contact_key=new)
    try:
        found = await only_new.client.post(
            "/api/v1/complaints/lookup",
            json={"tracking_no": submitted["tracking_no"], "phone_last4": "4321"},
        )
        assert found.status_code == 200, found.text
    finally:
        await stop_harness(only_new)


def test_a_development_contact_key_is_kept_in_the_data_folder(tmp_path: Path) -> None:
    from tests.conftest import make_settings

    first = ContactSeal.from_settings(make_settings(tmp_path))
    again = ContactSeal.from_settings(make_settings(tmp_path))
    assert first.key_id == again.key_id
    key_file = tmp_path / "contact-key"
    assert key_file.exists()
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    sealed = first.seal("c1", "phone", PHONE)
    assert again.open("c1", "phone", sealed, first.key_id) == PHONE
