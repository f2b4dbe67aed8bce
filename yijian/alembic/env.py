"""Alembic's environment, shared by every service database and the embedded event log.

``yijian.migrate`` hands in the connection and the service's metadata through the config's
attributes; each service keeps only its own ``migrations/`` folder of versions.
"""

from __future__ import annotations

from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext

from yijian.db import UtcDateTime


def render_item(type_: str, item: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    # Migrations say what the column is in the database, not which Python type reads it.
    if type_ == "type" and isinstance(item, UtcDateTime):
        return "sa.DateTime(timezone=True)"
    return False


config = context.config
connection = config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=config.attributes["metadata"],
    render_item=render_item,
    render_as_batch=True,  # SQLite can only alter a table by copying it
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
