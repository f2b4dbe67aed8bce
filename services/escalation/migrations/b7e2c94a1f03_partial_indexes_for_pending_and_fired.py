"""partial indexes for pending and fired deadlines

Revision ID: b7e2c94a1f03
Revises: 4bed8e06aa1b
Create Date: 2026-12-08 01:55:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "b7e2c94a1f03"
down_revision: str | None = "4bed8e06aa1b"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PENDING = sa.text("state = 'pending'")
_FIRED = sa.text("state = 'fired'")


def upgrade() -> None:
    # The new indexes first, so the firing loop is never left without one. (Building them
    # locks writes to the table while they run.)
    with op.batch_alter_table("deadlines", schema=None) as batch_op:
        batch_op.create_index(
            "ix_deadlines_pending_due",
            ["fire_at", "id"],
            unique=False,
            postgresql_where=_PENDING,
            sqlite_where=_PENDING,
        )
        batch_op.create_index(
            "ix_deadlines_fired_at",
            ["fired_at"],
            unique=False,
            postgresql_where=_FIRED,
            sqlite_where=_FIRED,
        )
        batch_op.drop_index("ix_deadlines_due")


def downgrade() -> None:
    with op.batch_alter_table("deadlines", schema=None) as batch_op:
        batch_op.create_index("ix_deadlines_due", ["state", "fire_at", "id"], unique=False)
        batch_op.drop_index("ix_deadlines_fired_at")
        batch_op.drop_index("ix_deadlines_pending_due")
