"""Contacts stored before sealing existed survive the migration and are sealed, on SQLite and
on PostgreSQL; the sealed values fit the widened columns."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select, text

from services.intake import store
from services.intake.app import MIGRATIONS
from services.intake.contacts import Contact, ContactSeal, add_contact, contact_of, reseal
from tests.integration.test_migrations import empty_database
from yijian.db import create_engine
from yijian.migrate import migrate

pytestmark = pytest.mark.integration

BEFORE_SEALING = "663f20f68a8b"  # the revision before contacts were sealed
LONG_NAME = "欧阳" * 25  # the longest name a citizen may give: 50 characters


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_plain_contacts_are_sealed_after_the_migration(
    request: pytest.FixtureRequest, tmp_path: Path, backend: str
) -> None:
    engine = create_engine(await empty_database(request, backend, tmp_path / "intake.db"))
    await migrate(engine, store.metadata, MIGRATIONS, BEFORE_SEALING)
    async with engine.begin() as connection:
        for complaint_id in ("old", "new"):
            await connection.execute(
                text(
                    "INSERT INTO complaints (id, tracking_no, description, urgency, channel,"
                    " submitted_at) VALUES (:id, :no, 'd', 'normal', 'web', :at)"
                ),
                {"id": complaint_id, "no": f"GZ-{complaint_id}", "at": datetime.now(UTC)},
            )
        await connection.execute(
            text(
                "INSERT INTO contacts (complaint_id, name, phone, wechat_openid)"
                " VALUES ('old', '王', '13800000000', 'oOLD')"
            )
        )
    await migrate(engine, store.metadata, MIGRATIONS)

    seal = ContactSeal("a contact key for this test only, long enough")
    assert await reseal(engine, seal) == 1
    assert await reseal(engine, seal) == 0  # nothing left to do
    async with engine.begin() as connection:
        # A full-length name still fits once sealed.
        await add_contact(
            connection, seal, "new", Contact(name=LONG_NAME, phone="+86 139 0000 0000")
        )
    async with engine.connect() as connection:
        raw = (
            await connection.execute(select(store.contacts).order_by(store.contacts.c.complaint_id))
        ).all()
        assert all(row.sealed_with == seal.key_id for row in raw)
        assert "13800000000" not in str(raw)
        assert "oOLD" not in str(raw)
        old = await contact_of(connection, seal, "old")
        new = await contact_of(connection, seal, "new")
        found = await connection.scalar(
            select(store.contacts.c.complaint_id).where(
                store.contacts.c.openid_digest.in_(seal.openid_digests("oOLD"))
            )
        )
    assert old == Contact(name="王", phone="13800000000", wechat_openid="oOLD")
    assert new is not None
    assert new.name == LONG_NAME
    assert found == "old"
    await engine.dispose()
