"""claim due deadlines in index order

Revision ID: 4bed8e06aa1b
Revises: d65fd51de8a2
Create Date: 2026-12-02 12:23:04.471398
"""

from collections.abc import Sequence

from alembic import op

revision: str = "4bed8e06aa1b"
down_revision: str | None = "d65fd51de8a2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The new index first, so the firing loop is never left without one. (Building it locks
    # writes to the table while it runs.)
    with op.batch_alter_table("deadlines", schema=None) as batch_op:
        batch_op.create_index("ix_deadlines_due", ["state", "fire_at", "id"], unique=False)
        batch_op.drop_index(batch_op.f("ix_deadlines_state_fire_at"))


def downgrade() -> None:
    with op.batch_alter_table("deadlines", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_deadlines_state_fire_at"), ["state", "fire_at"], unique=False
        )
        batch_op.drop_index("ix_deadlines_due")
