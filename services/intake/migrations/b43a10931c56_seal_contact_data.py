"""seal contact data

The contact columns become wide enough for ciphertext. Rows already there keep their plain
values, marked by a NULL ``sealed_with``, until intake starts and seals them with the key
from its settings (services/intake/contacts.py ``reseal``): a migration has no key. Going
back down only works on rows that fit the old widths, i.e. before anything was sealed.

Revision ID: b43a10931c56
Revises: 663f20f68a8b
Create Date: 2026-12-02 00:48:45.586517
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "b43a10931c56"
down_revision: str | None = "663f20f68a8b"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sealed_with", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("openid_digest", sa.String(length=64), nullable=True))
        batch_op.alter_column(
            "name", existing_type=sa.VARCHAR(length=50), type_=sa.Text(), existing_nullable=True
        )
        batch_op.alter_column(
            "phone", existing_type=sa.VARCHAR(length=20), type_=sa.Text(), existing_nullable=True
        )
        batch_op.alter_column(
            "address", existing_type=sa.VARCHAR(length=200), type_=sa.Text(), existing_nullable=True
        )
        batch_op.alter_column(
            "email", existing_type=sa.VARCHAR(length=254), type_=sa.Text(), existing_nullable=True
        )
        batch_op.alter_column(
            "wechat_openid",
            existing_type=sa.VARCHAR(length=64),
            type_=sa.Text(),
            existing_nullable=True,
        )
        batch_op.drop_index(batch_op.f("ix_contacts_wechat_openid"))
        batch_op.create_index("ix_contacts_openid_digest", ["openid_digest"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.drop_index("ix_contacts_openid_digest")
        batch_op.create_index(
            batch_op.f("ix_contacts_wechat_openid"), ["wechat_openid"], unique=False
        )
        batch_op.alter_column(
            "wechat_openid",
            existing_type=sa.Text(),
            type_=sa.VARCHAR(length=64),
            existing_nullable=True,
        )
        batch_op.alter_column(
            "email", existing_type=sa.Text(), type_=sa.VARCHAR(length=254), existing_nullable=True
        )
        batch_op.alter_column(
            "address", existing_type=sa.Text(), type_=sa.VARCHAR(length=200), existing_nullable=True
        )
        batch_op.alter_column(
            "phone", existing_type=sa.Text(), type_=sa.VARCHAR(length=20), existing_nullable=True
        )
        batch_op.alter_column(
            "name", existing_type=sa.Text(), type_=sa.VARCHAR(length=50), existing_nullable=True
        )
        batch_op.drop_column("openid_digest")
        batch_op.drop_column("sealed_with")
