"""Intake's tables: what citizens sent, their contact kept apart, and the citizen's view.

The contact table is separate so that nothing that reads complaints for routing or display
touches personal data by accident.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    ForeignKey,
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

complaints = Table(
    "complaints",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("tracking_no", String(20), nullable=False, unique=True),
    Column("description", Text, nullable=False),
    Column("category", String(50)),
    Column("urgency", String(10), nullable=False),
    Column("channel", String(20), nullable=False),
    Column("grid_code", String(15)),
    Column("village_code", String(12)),
    Column("lat", Float),
    Column("lon", Float),
    Column("submitted_at", UtcDateTime(), nullable=False),
)

contacts = Table(
    "contacts",
    metadata,
    Column("complaint_id", String(32), ForeignKey("complaints.id"), primary_key=True),
    Column("name", String(50)),
    Column("phone", String(20)),
    Column("address", String(200)),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("key", String(200), primary_key=True),
    Column("fingerprint", String(64), nullable=False),
    Column("complaint_id", String(32), ForeignKey("complaints.id"), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
)

# The citizen's view, built from routing's and escalation's events.
complaint_views = Table(
    "complaint_views",
    metadata,
    Column("complaint_id", String(32), ForeignKey("complaints.id"), primary_key=True),
    Column("status", String(20), nullable=False),
    Column("level", String(10)),
    Column("assignee_code", String(15)),
    Column("assignee_name", String(100)),
    Column("supervisor_code", String(15)),
    Column("supervisor_name", String(100)),
    Column("clock", Integer, nullable=False, default=0),
    # Deadlines may arrive before the case event that started their clock (other topic).
    Column("deadline_clock", Integer, nullable=False, default=0),
    Column("accept_due_at", UtcDateTime()),
    Column("resolve_due_at", UtcDateTime()),
    Column("overdue", Boolean, nullable=False, default=False),
    Column("updated_at", UtcDateTime(), nullable=False),
)

timeline = Table(
    "timeline",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("complaint_id", String(32), ForeignKey("complaints.id"), nullable=False),
    Column("at", UtcDateTime(), nullable=False),
    Column("kind", String(40), nullable=False),
    Column("text", String(200), nullable=False),
    Index("ix_timeline_complaint", "complaint_id", "at"),
)

# Every service database also holds the outbox and the processed-event table.
outbox_tables(metadata)
