"""Versioned schema migrations (Alembic), run by each service when it starts.

Every database (one per service, plus the embedded event log) has its own version folder
and its own ``alembic_version`` table; the environment in ``yijian/alembic`` is shared.
The same migrations run on SQLite and on PostgreSQL.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, MetaData
from sqlalchemy.ext.asyncio import AsyncEngine

_ENVIRONMENT = Path(__file__).parent / "alembic"


def _config(connection: Connection | None, metadata: MetaData, versions: Path) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_ENVIRONMENT))
    config.set_main_option("version_locations", str(versions))
    config.set_main_option("path_separator", "os")
    config.attributes["connection"] = connection
    config.attributes["metadata"] = metadata
    return config


async def migrate(
    engine: AsyncEngine, metadata: MetaData, versions: Path, revision: str = "head"
) -> None:
    """Bring the database to the newest version (or ``revision``, for tests of a data
    migration); a no-op when it is there already."""

    def upgrade(connection: Connection) -> None:
        command.upgrade(_config(connection, metadata, versions), revision)

    async with engine.begin() as connection:
        await connection.run_sync(upgrade)


async def new_revision(
    engine: AsyncEngine, metadata: MetaData, versions: Path, message: str
) -> None:
    """Write a migration for what the tables gained since the last one (developers)."""
    await migrate(engine, metadata, versions)

    def revise(connection: Connection) -> None:
        command.revision(
            _config(connection, metadata, versions), message=message, autogenerate=True
        )

    async with engine.begin() as connection:
        await connection.run_sync(revise)
