"""seal the openid of wechat sessions

``wechat_sessions.openid`` held the openid in clear; ``openid_sealed`` holds it sealed with
the contact key (``sealed_with`` names the key). A migration has no key to seal the rows
already there, and a session lasts a day at most, so they are deleted: those mini-program
users get "sign in again" once and their app signs in by itself. Going down deletes the
sealed sessions for the same reason.

Revision ID: 748dbe9b4f1d
Revises: 3fe7f913f85d
Create Date: 2026-12-02 01:31:15.157364
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "748dbe9b4f1d"
down_revision: str | None = "3fe7f913f85d"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(sa.text("DELETE FROM wechat_sessions"))
    with op.batch_alter_table("wechat_sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("openid_sealed", sa.Text(), nullable=False))
        batch_op.add_column(sa.Column("sealed_with", sa.String(length=16), nullable=False))
        batch_op.drop_column("openid")


def downgrade() -> None:
    op.execute(sa.text("DELETE FROM wechat_sessions"))
    with op.batch_alter_table("wechat_sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("openid", sa.VARCHAR(length=64), nullable=False))
        batch_op.drop_column("sealed_with")
        batch_op.drop_column("openid_sealed")
