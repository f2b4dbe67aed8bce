"""The audit log is a hash chain the database keeps append-only; ``yijian audit verify``
walks it. Concurrent writers never fork it, on SQLite as on PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import insert, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine
from typer.testing import CliRunner

from services.cli import app
from services.routing import store
from services.routing.app import MIGRATIONS
from services.routing.audit import Actor, AuditLog
from services.routing.audit_chain import verify_database
from tests.conftest import MONDAY_MORNING, start_harness, stop_harness
from tests.integration.test_migrations import empty_database
from yijian.bus.outbox import ServiceDatabase
from yijian.clock import FakeClock
from yijian.db import create_engine
from yijian.migrate import migrate

pytestmark = pytest.mark.integration

BEFORE_CHAIN = "3682df241afc"  # the routing revision before the audit log was chained
SECRET = "test-only-secret-key-of-enough-length-32b"


def verify_command(data_dir: Path, *options: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        app,
        ["audit", "verify", *options],
        env={"YIJIAN_DATA_DIR": str(data_dir), "YIJIAN_AUTH_SECRET": SECRET},
    )
    return result.exit_code, result.output


async def drop_guards(engine: AsyncEngine) -> None:
    """What someone with full rights on the database would do before editing the log."""
    async with engine.begin() as connection:
        await connection.execute(text("DROP TRIGGER audit_log_no_update"))
        await connection.execute(text("DROP TRIGGER audit_log_no_delete"))


async def routing_database(request: pytest.FixtureRequest, backend: str, path: Path) -> AsyncEngine:
    engine = create_engine(await empty_database(request, backend, path))
    await migrate(engine, store.metadata, MIGRATIONS)
    return engine


def test_verify_passes_an_untouched_log_and_names_the_row_changed_or_deleted(
    tmp_path: Path,
) -> None:
    async def work() -> None:
        harness = await start_harness(tmp_path, FakeClock(MONDAY_MORNING))
        try:
            complaint = (await harness.submit())["id"]
            village = harness.staff(harness.village_code)
            for action, body in (("accept", None), ("reply", {"message": "已安排"})):
                answer = await harness.client.post(
                    f"/api/v1/complaints/{complaint}/{action}", json=body, headers=village
                )
                assert answer.status_code == 200, answer.text
            refused = await harness.client.post(
                f"/api/v1/complaints/{complaint}/accept", headers=harness.staff("620922100002")
            )
            assert refused.status_code in (403, 404)
            assert len(await harness.system.routing.audit.entries()) == 3
        finally:
            await stop_harness(harness)

    asyncio.run(work())
    status, said = verify_command(tmp_path)
    assert status == 0, said
    assert "audit chain intact: 3 rows, head " in said
    head = said.strip().rsplit(" ", 1)[1]
    assert verify_command(tmp_path, "--head", head)[0] == 0

    async def tamper(statement: str) -> object:
        engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'routing.db'}")
        try:
            async with engine.begin() as connection:
                result = await connection.execute(text(statement))
                return result.scalar() if result.returns_rows else None
        finally:
            await engine.dispose()

    async def unguard() -> None:
        engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'routing.db'}")
        await drop_guards(engine)
        await engine.dispose()

    asyncio.run(unguard())
    refusal = asyncio.run(tamper("SELECT outcome FROM audit_log WHERE id = 3"))
    assert str(refusal).startswith("refused")
    asyncio.run(tamper("UPDATE audit_log SET outcome = 'ok' WHERE id = 3"))
    status, said = verify_command(tmp_path)
    assert status == 1
    assert "row 3 was changed" in said

    asyncio.run(tamper(f"UPDATE audit_log SET outcome = '{refusal}' WHERE id = 3"))
    assert verify_command(tmp_path)[0] == 0  # put back exactly: intact again
    asyncio.run(tamper("DELETE FROM audit_log WHERE id = 2"))
    status, said = verify_command(tmp_path)
    assert status == 1
    assert "rows between row 1 and row 3 were deleted" in said

    asyncio.run(tamper("DELETE FROM audit_log WHERE id = 3"))
    assert verify_command(tmp_path)[0] == 0  # one row is left, and it is the first
    status, said = verify_command(tmp_path, "--head", head)
    assert status == 1
    assert "noted earlier is not in the chain" in said


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_the_database_refuses_to_change_or_delete_an_entry(
    request: pytest.FixtureRequest, tmp_path: Path, backend: str
) -> None:
    engine = await routing_database(request, backend, tmp_path / "routing.db")
    audit = AuditLog(ServiceDatabase(engine, store.metadata, producer="routing", clock=FakeClock()))
    await audit.record(Actor("zhang", "620922100", "supervisor"), "login", "ok", "r1")
    for statement in (
        "UPDATE audit_log SET outcome = 'failed'",
        "DELETE FROM audit_log",
    ):
        with pytest.raises(DBAPIError, match="append-only"):
            async with engine.begin() as connection:
                await connection.execute(text(statement))
    assert (await verify_database(engine)).rows == 1
    await engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_concurrent_writers_never_fork_the_chain(
    request: pytest.FixtureRequest, tmp_path: Path, backend: str
) -> None:
    engine = await routing_database(request, backend, tmp_path / "routing.db")
    clock = FakeClock()
    # Two logs on one database, as two routing replicas would have.
    logs = [
        AuditLog(ServiceDatabase(engine, store.metadata, producer="routing", clock=clock))
        for _ in range(2)
    ]
    await asyncio.gather(
        *(
            logs[n % 2].record(Actor(f"user{n}", "620922", "admin"), "login", "ok", f"r{n}")
            for n in range(30)
        )
    )
    verdict = await verify_database(engine)
    assert verdict.intact, verdict.problem
    assert verdict.rows == 30
    async with engine.connect() as connection:
        parents = (await connection.scalars(select(store.audit_log.c.prev_hash))).all()
    assert len(set(parents)) == 30  # no two entries share a parent
    await engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_entries_from_before_the_chain_are_chained_by_the_migration(
    request: pytest.FixtureRequest, tmp_path: Path, backend: str
) -> None:
    engine = create_engine(await empty_database(request, backend, tmp_path / "routing.db"))
    await migrate(engine, store.metadata, MIGRATIONS, BEFORE_CHAIN)
    async with engine.begin() as connection:
        for n in range(1, 4):
            await connection.execute(
                text(
                    "INSERT INTO audit_log (at, username, org_code, role, action, outcome,"
                    " request_id) VALUES (:at, :user, '620922', 'admin', 'login', 'ok', :r)"
                ),
                {
                    "at": datetime(2026, 3, 2, n, 0, 0, 123456, tzinfo=UTC),
                    "user": f"u{n}",
                    "r": f"r{n}",
                },
            )
    await migrate(engine, store.metadata, MIGRATIONS)
    verdict = await verify_database(engine)
    assert verdict.intact, verdict.problem
    assert verdict.rows == 3
    # New entries continue the same chain.
    audit = AuditLog(ServiceDatabase(engine, store.metadata, producer="routing", clock=FakeClock()))
    await audit.record(Actor("u4", "620922", "admin"), "logout", "ok", "r4")
    assert (await verify_database(engine)).rows == 4
    async with engine.connect() as connection:
        ids = (
            await connection.scalars(select(store.audit_log.c.id).order_by(store.audit_log.c.id))
        ).all()
    assert ids == [1, 2, 3, 4]
    await engine.dispose()


async def test_sqlite_keeps_its_guards(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'routing.db'}")
    await migrate(engine, store.metadata, MIGRATIONS)
    async with engine.connect() as connection:
        triggers = (
            await connection.scalars(
                text("SELECT name FROM sqlite_master WHERE type = 'trigger' ORDER BY name")
            )
        ).all()
    assert triggers == ["audit_log_no_delete", "audit_log_no_update"]
    # Inserting stays allowed: that is how entries arrive.
    async with engine.begin() as connection:
        await connection.execute(
            insert(store.audit_log).values(
                id=1,
                at=MONDAY_MORNING,
                username="u",
                action="login",
                outcome="ok",
                request_id="r",
                prev_hash="0" * 64,
                hash="x",
            )
        )
    await engine.dispose()
