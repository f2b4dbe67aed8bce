"""submission limit counters

Revision ID: 663f20f68a8b
Revises: 1a44f784e726
Create Date: 2026-12-02 00:44:48.150103
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "663f20f68a8b"
down_revision: str | None = "1a44f784e726"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "submission_counts",
        sa.Column("subject", sa.String(length=80), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("subject", "window_start"),
    )
    with op.batch_alter_table("submission_counts", schema=None) as batch_op:
        batch_op.create_index("ix_submission_counts_window_start", ["window_start"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("submission_counts", schema=None) as batch_op:
        batch_op.drop_index("ix_submission_counts_window_start")

    op.drop_table("submission_counts")
