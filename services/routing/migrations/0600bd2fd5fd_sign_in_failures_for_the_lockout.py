"""sign-in failures for the lockout

Revision ID: 0600bd2fd5fd
Revises: bbb782086822
Create Date: 2026-12-02 01:05:05.485898
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0600bd2fd5fd"
down_revision: str | None = "bbb782086822"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sign_in_failures",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("subject", sa.String(length=80), nullable=False),
        sa.Column("failed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("sign_in_failures", schema=None) as batch_op:
        batch_op.create_index("ix_sign_in_failures_subject", ["subject", "failed_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("sign_in_failures", schema=None) as batch_op:
        batch_op.drop_index("ix_sign_in_failures_subject")

    op.drop_table("sign_in_failures")
