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
    UniqueConstraint,
    false,
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
    # Open311's GET requests lists by date, newest first.
    Index("ix_complaints_submitted_at", "submitted_at"),
)

# Every personal field is sealed (AES-GCM, services/intake/contacts.py): the columns hold
# ciphertext, never a name, number, address or openid as typed.
contacts = Table(
    "contacts",
    metadata,
    Column("complaint_id", String(32), ForeignKey("complaints.id"), primary_key=True),
    Column("name", Text),
    Column("phone", Text),
    Column("address", Text),
    # An Open311 client's email, and the WeChat user who submitted through the mini-program
    # (the key of "my complaints" and of the subscribe messages notify sends).
    Column("email", Text),
    Column("wechat_openid", Text),
    # Which key sealed the row (a fingerprint); NULL for a row written before sealing,
    # which intake seals when it starts.
    Column("sealed_with", String(16)),
    # A keyed digest of the openid, to find a user's complaints without opening any.
    Column("openid_digest", String(64)),
    # The citizen asked that their village (community) never learn who they are: staff at
    # village level see neither the contact nor the address (services/routing/privacy.py).
    # A choice, not personal data, so it is kept in clear.
    Column("conceal_from_village", Boolean, nullable=False, default=False, server_default=false()),
    Index("ix_contacts_openid_digest", "openid_digest"),
)

# Mini-program sign-ins (services/intake/wechat_session.py). The token itself is never
# stored, only its SHA-256, so a copy of this table signs nobody in; the openid is sealed
# with the contact key as the contacts are (``sealed_with`` names that key), and WeChat's
# session_key is kept sealed (AES-GCM) and never leaves the server.
wechat_sessions = Table(
    "wechat_sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("openid_sealed", Text, nullable=False),
    Column("sealed_with", String(16), nullable=False),
    Column("session_key_sealed", String(200), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=False),
    Index("ix_wechat_sessions_expires_at", "expires_at"),
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
    # How often 不满意 reopened it, to tell the citizen when the policy's limit is reached.
    Column("reopens", Integer, nullable=False, default=0, server_default="0"),
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

# Photos a citizen attached. The file lives under data_dir/photos/<stored_as>, a random
# name: never the client's file name, so no path a client sends reaches the disk.
photos = Table(
    "photos",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("complaint_id", String(32), ForeignKey("complaints.id"), nullable=False),
    Column("stored_as", String(32), nullable=False, unique=True),
    Column("content_type", String(20), nullable=False),
    Column("size", Integer, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("uploaded_at", UtcDateTime(), nullable=False),
    # The same picture sent again (a retry on a flaky connection) is the same photo.
    UniqueConstraint("complaint_id", "sha256", name="uq_photos_complaint_sha256"),
)

# The citizen's verdict, once per resolution: ``resolution`` is the view's clock when it was
# resolved, and only a reopening (a new clock) allows another rating.
ratings = Table(
    "ratings",
    metadata,
    Column("complaint_id", String(32), ForeignKey("complaints.id"), primary_key=True),
    Column("resolution", Integer, primary_key=True),
    Column("rating", String(24), nullable=False),
    Column("rated_at", UtcDateTime(), nullable=False),
)

# How many complaints each sender filed per window (services/intake/submission_limits.py),
# and how many lookups each tracking number had (``lookup:…``, citizen_access.py).
# ``subject`` names the kind of counter and a keyed digest of whom it counts, never the
# phone number, openid, address or tracking number itself.
submission_counts = Table(
    "submission_counts",
    metadata,
    Column("subject", String(80), primary_key=True),
    Column("window_start", UtcDateTime(), primary_key=True),
    Column("count", Integer, nullable=False),
    Index("ix_submission_counts_window_start", "window_start"),
)

# Every service database also holds the outbox and the processed-event table.
outbox_tables(metadata)
