"""Every database's migrations build exactly the tables the code declares."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, MetaData, inspect

from services.escalation import store as escalation_store
from services.escalation.app import MIGRATIONS as ESCALATION
from services.intake import store as intake_store
from services.intake.app import MIGRATIONS as INTAKE
from services.notify import store as notify_store
from services.notify.app import MIGRATIONS as NOTIFY
from services.routing import store as routing_store
from services.routing.app import MIGRATIONS as ROUTING
from tests.integration.conftest import NewDatabase
from yijian.bus.sqllog import MIGRATIONS as EVENTLOG
from yijian.bus.sqllog import metadata as eventlog_metadata
from yijian.db import create_engine
from yijian.migrate import migrate

DATABASES = {
    "intake": (intake_store.metadata, INTAKE),
    "routing": (routing_store.metadata, ROUTING),
    "escalation": (escalation_store.metadata, ESCALATION),
    "notify": (notify_store.metadata, NOTIFY),
    "eventlog": (eventlog_metadata, EVENTLOG),
}


async def empty_database(request: pytest.FixtureRequest, backend: str, path: Path) -> str:
    """A URL of an empty database: a SQLite file, or one on the session's PostgreSQL."""
    if backend == "sqlite":
        return f"sqlite+aiosqlite:///{path}"
    create: NewDatabase = request.getfixturevalue("new_postgres_database")
    return await create()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
@pytest.mark.parametrize("name", sorted(DATABASES))
async def test_migrations_match_the_declared_tables(
    request: pytest.FixtureRequest, tmp_path: Path, name: str, backend: str
) -> None:
    metadata, versions = DATABASES[name]
    engine = create_engine(await empty_database(request, backend, tmp_path / f"{name}.db"))
    await migrate(engine, metadata, versions)
    await migrate(engine, metadata, versions)  # a second start changes nothing

    def differences(connection: Connection) -> list[object]:
        context = MigrationContext.configure(connection, opts={"compare_type": False})
        return list(compare_metadata(context, metadata))

    def tables(connection: Connection) -> set[str]:
        return set(inspect(connection).get_table_names())

    async with engine.connect() as connection:
        assert await connection.run_sync(differences) == [], "run `yijian db revision`"
        assert await connection.run_sync(tables) == set(metadata.tables) | {"alembic_version"}
    await engine.dispose()


async def test_a_table_without_a_migration_is_noticed(tmp_path: Path) -> None:
    """The comparison above can fail: a declared table that no migration creates shows."""
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'x'}.db")
    await migrate(engine, intake_store.metadata, INTAKE)
    extended = MetaData()
    for table in intake_store.metadata.tables.values():
        table.to_metadata(extended)
    from sqlalchemy import Column, Integer, Table

    Table("unmigrated_notes", extended, Column("id", Integer, primary_key=True))

    def differences(connection: Connection) -> list[object]:
        return list(compare_metadata(MigrationContext.configure(connection), extended))

    async with engine.connect() as connection:
        assert any("unmigrated_notes" in str(d) for d in await connection.run_sync(differences))
    await engine.dispose()
