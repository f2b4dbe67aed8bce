"""chain the audit log

Every entry gets the previous entry's hash and its own (services/routing/audit_chain.py);
entries already there are chained here, in id order. The database then refuses to update or
delete entries: triggers on SQLite and on PostgreSQL. SQLite drops a table's triggers when
a batch migration rebuilds it, so a later migration that alters ``audit_log`` must create
them again (``refuse_changes`` below); a test checks they are in place.

Revision ID: bbb782086822
Revises: 3682df241afc
Create Date: 2026-12-02 00:54:39.295345
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from services.routing.audit_chain import GENESIS, entry_hash
from services.routing.store import audit_log

revision: str = "bbb782086822"
down_revision: str | None = "3682df241afc"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_REFUSAL = "audit_log is append-only"


def upgrade() -> None:
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.add_column(sa.Column("prev_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("hash", sa.String(length=64), nullable=True))
    chain_existing_entries()
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.alter_column("prev_hash", existing_type=sa.String(length=64), nullable=False)
        batch_op.alter_column("hash", existing_type=sa.String(length=64), nullable=False)
    refuse_changes()


def chain_existing_entries() -> None:
    bind = op.get_bind()
    columns = [c for c in audit_log.c if c.name not in {"prev_hash", "hash"}]
    previous = GENESIS
    for row in bind.execute(sa.select(*columns).order_by(audit_log.c.id)).all():
        entry: dict[str, object] = {**row._mapping, "prev_hash": previous}
        digest = entry_hash(entry)
        bind.execute(
            sa.update(audit_log)
            .where(audit_log.c.id == row.id)
            .values(prev_hash=previous, hash=digest)
        )
        previous = digest


def refuse_changes() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger "
            f"LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION '{_REFUSAL}'; END $$"
        )
        op.execute(
            "CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log "
            "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()"
        )
        op.execute(
            "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()"
        )
        return
    for event in ("UPDATE", "DELETE"):
        op.execute(
            f"CREATE TRIGGER audit_log_no_{event.lower()} BEFORE {event} ON audit_log "
            f"BEGIN SELECT RAISE(ABORT, '{_REFUSAL}'); END"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_change ON audit_log")
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log")
        op.execute("DROP FUNCTION IF EXISTS audit_log_append_only()")
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_update")
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_delete")
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_column("hash")
        batch_op.drop_column("prev_hash")
