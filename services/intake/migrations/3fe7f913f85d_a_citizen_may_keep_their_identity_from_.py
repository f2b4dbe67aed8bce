"""a citizen may keep their identity from their village

``contacts.conceal_from_village``: the citizen asked that staff at village level never see
who they are. Rows already there were filed before anyone could ask, so they get false.
``sa.false()`` rather than a literal 0, which PostgreSQL refuses as a boolean default.

Revision ID: 3fe7f913f85d
Revises: b43a10931c56
Create Date: 2026-12-02 01:29:56.930890
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "3fe7f913f85d"
down_revision: str | None = "b43a10931c56"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "conceal_from_village", sa.Boolean(), server_default=sa.false(), nullable=False
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.drop_column("conceal_from_village")
