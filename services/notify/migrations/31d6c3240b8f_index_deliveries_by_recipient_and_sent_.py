"""index deliveries by recipient and sent time

Revision ID: 31d6c3240b8f
Revises: 8c4661bbec88
Create Date: 2026-12-02 00:47:18.901130
"""

from collections.abc import Sequence

from alembic import op

revision: str = "31d6c3240b8f"
down_revision: str | None = "8c4661bbec88"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.create_index(
            "ix_deliveries_recipient_sent", ["recipient_key", "sent_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_deliveries_recipient_sent")
