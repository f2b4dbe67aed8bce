"""Routing's tables: cases, what staff did to them, and each level's stint for the figures."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

from yijian.bus.outbox import outbox_tables
from yijian.db import UtcDateTime

metadata = MetaData()

cases = Table(
    "cases",
    metadata,
    Column("complaint_id", String(32), primary_key=True),
    Column("tracking_no", String(20), nullable=False),
    Column("category", String(50)),
    Column("urgency", String(10), nullable=False),
    Column("status", String(20), nullable=False),
    Column("level", String(10), nullable=False),
    Column("assignee_code", String(15), nullable=False),
    Column("assignee_name", String(100), nullable=False),
    Column("assignee_level", String(10), nullable=False),
    Column("supervisor_code", String(15)),
    Column("supervisor_name", String(100)),
    Column("supervisor_level", String(10)),
    # Where the complaint is, for jurisdiction filters; None when it could not be placed.
    Column("township_code", String(9)),
    Column("village_code", String(12)),
    Column("grid_code", String(15)),
    Column("clock", Integer, nullable=False),
    Column("returns", Integer, nullable=False, default=0),
    Column("reopens", Integer, nullable=False, default=0),
    Column("overdue", Boolean, nullable=False, default=False),
    Column("missed_deadlines", Integer, nullable=False, default=0),
    Column("correlation_id", String(36), nullable=False),
    Column("submitted_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    # When the current set of clocks started, and the deadlines escalation set for it
    # (from escalation.deadlines_set; None until that event arrives for this clock).
    Column("clock_started_at", UtcDateTime()),
    Column("accept_due_at", UtcDateTime()),
    Column("resolve_due_at", UtcDateTime()),
    # 回访: when the return visit was recorded and whether the citizen was satisfied.
    Column("visited_at", UtcDateTime()),
    Column("visit_satisfied", Boolean),
    # The citizen's latest rating (complaint.rated): satisfied, basically_satisfied, unsatisfied.
    Column("rating", String(24)),
    Index("ix_cases_assignee", "assignee_code", "status"),
    Index("ix_cases_supervisor", "supervisor_code", "status"),
)

case_actions = Table(
    "case_actions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("complaint_id", String(32), nullable=False, index=True),
    Column("at", UtcDateTime(), nullable=False),
    Column("action", String(20), nullable=False),
    Column("actor_org", String(15)),
    Column("actor_user", String(100)),
    Column("from_status", String(20), nullable=False),
    Column("to_status", String(20), nullable=False),
    Column("note", Text),
)

# One row per spell of a level being accountable for a case: the basis of /api/v1/stats.
level_stints = Table(
    "level_stints",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("complaint_id", String(32), nullable=False, index=True),
    Column("level", String(10), nullable=False),
    Column("org_code", String(15), nullable=False),
    Column("township_code", String(9)),
    Column("village_code", String(12)),
    Column("entered_at", UtcDateTime(), nullable=False),
    Column("accepted_at", UtcDateTime()),
    Column("left_at", UtcDateTime()),
    # resolved | escalated | dispatched | returned | reopened; None while current.
    Column("outcome", String(20)),
    Column("missed", Boolean, nullable=False, default=False),
    Index("ix_stints_entered", "entered_at"),
    # The dashboard's per-day series counts resolutions and escalations by when they happened.
    Index("ix_stints_left", "left_at"),
)

# Staff who sign in to the workbench. The password is an argon2id hash, never the password.
staff_users = Table(
    "staff_users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("display_name", String(100), nullable=False),
    Column("org_code", String(15), nullable=False),
    Column("role", String(20), nullable=False),  # staff | supervisor | admin
    Column("password_hash", String(200), nullable=False),
    Column("must_change_password", Boolean, nullable=False, default=False),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("created_at", UtcDateTime(), nullable=False),
)

# One row per sign-in; the token names it, so signing out or disabling a user ends it.
staff_sessions = Table(
    "staff_sessions",
    metadata,
    Column("id", String(43), primary_key=True),
    Column("username", String(64), nullable=False, index=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=False),
    Column("ended_at", UtcDateTime()),
)

# Who did what, append-only: the code inserts here and never updates or deletes.
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", UtcDateTime(), nullable=False),
    Column("username", String(64), nullable=False),
    Column("org_code", String(15)),
    Column("role", String(20)),
    Column("action", String(30), nullable=False),
    Column("complaint_id", String(32)),
    Column("outcome", String(40), nullable=False),
    Column("request_id", String(64), nullable=False),
    # The hash chain (services/routing/audit_chain.py): the previous entry's hash, and this
    # entry's own over its content and that previous hash.
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Index("ix_audit_complaint", "complaint_id"),
    Index("ix_audit_at", "at"),
)

# Failed staff sign-ins, for the lockout (services/routing/sign_in_guard.py). ``subject``
# is a keyed digest of the account or the client's address, not the name or address itself.
sign_in_failures = Table(
    "sign_in_failures",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("subject", String(80), nullable=False),
    Column("failed_at", UtcDateTime(), nullable=False),
    Index("ix_sign_in_failures_subject", "subject", "failed_at"),
)

# Every service database also holds the outbox and the processed-event table.
outbox_tables(metadata)
