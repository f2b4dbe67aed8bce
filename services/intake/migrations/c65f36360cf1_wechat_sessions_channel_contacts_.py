"""wechat sessions, channel contacts, open311 index

Revision ID: c65f36360cf1
Revises: 1bacf1e60873
Create Date: 2026-11-23 19:00:44.768549
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c65f36360cf1"
down_revision: str | None = "1bacf1e60873"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "wechat_sessions",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("openid", sa.String(length=64), nullable=False),
        sa.Column("session_key_sealed", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("token_hash"),
    )
    with op.batch_alter_table("wechat_sessions", schema=None) as batch_op:
        batch_op.create_index("ix_wechat_sessions_expires_at", ["expires_at"], unique=False)

    with op.batch_alter_table("complaints", schema=None) as batch_op:
        batch_op.create_index("ix_complaints_submitted_at", ["submitted_at"], unique=False)

    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("email", sa.String(length=254), nullable=True))
        batch_op.add_column(sa.Column("wechat_openid", sa.String(length=64), nullable=True))
        batch_op.create_index("ix_contacts_wechat_openid", ["wechat_openid"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.drop_index("ix_contacts_wechat_openid")
        batch_op.drop_column("wechat_openid")
        batch_op.drop_column("email")

    with op.batch_alter_table("complaints", schema=None) as batch_op:
        batch_op.drop_index("ix_complaints_submitted_at")

    with op.batch_alter_table("wechat_sessions", schema=None) as batch_op:
        batch_op.drop_index("ix_wechat_sessions_expires_at")

    op.drop_table("wechat_sessions")
