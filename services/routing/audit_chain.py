"""The audit log's hash chain: each entry carries the digest of the one before it.

An entry's hash is SHA-256 over its canonical JSON (sorted keys, no spaces, UTF-8) with the
previous entry's hash inside, so editing, inserting or deleting a row breaks the chain at
that row, and ``verify`` names it. The first entry follows ``GENESIS``.

A chain is only as strong as its newest hash: whoever can rewrite the table can also rewrite
every hash after the change. ``yijian audit verify`` therefore prints the head, and an
operator who keeps it elsewhere (a ticket, the county's daily report) can later pass it as
``--head`` to prove nothing before it changed since.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.routing.store import audit_log
from yijian.db import reading

GENESIS = "0" * 64
# What an entry's hash covers: every column but the hash itself.
FIELDS = (
    "id",
    "at",
    "username",
    "org_code",
    "role",
    "action",
    "complaint_id",
    "outcome",
    "request_id",
    "prev_hash",
)
_PAGE = 1000
# Any constant both sides agree on: the key of PostgreSQL's lock for appending.
_APPEND_LOCK = 0x79696A69616E  # "yijian"


def canonical(entry: Mapping[str, object]) -> bytes:
    """One byte string per entry, the same on every machine and database."""
    fields: dict[str, object] = {name: entry[name] for name in FIELDS}
    at = fields["at"]
    if isinstance(at, datetime):
        fields["at"] = at.astimezone(UTC).isoformat(timespec="microseconds")
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def entry_hash(entry: Mapping[str, object]) -> str:
    return hashlib.sha256(canonical(entry)).hexdigest()


async def lock_for_append(connection: AsyncConnection) -> None:
    """Serialise appends until the caller's transaction ends, so two never share a parent.

    SQLite needs nothing here: every transaction begins IMMEDIATE (yijian.db), so writers
    already queue. PostgreSQL takes a transaction-scoped advisory lock; locking the last row
    instead would not do, since a writer that waited on it would wake to a stale "last".
    """
    if connection.dialect.name == "postgresql":
        await connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _APPEND_LOCK})


async def last_entry(connection: AsyncConnection) -> tuple[int, str]:
    """The newest entry's id and hash; (0, GENESIS) for an empty log."""
    row = (
        await connection.execute(
            select(audit_log.c.id, audit_log.c.hash).order_by(audit_log.c.id.desc()).limit(1)
        )
    ).first()
    return (0, GENESIS) if row is None else (int(row.id), str(row.hash))


@dataclass(frozen=True)
class Verdict:
    rows: int
    head: str
    problem: str | None = None

    @property
    def intact(self) -> bool:
        return self.problem is None


class ChainCheck:
    """Walks the chain in id order, one entry at a time, keeping only the last two hashes.

    The first change, insertion or deletion becomes ``problem``; ``expected_head`` is a hash
    noted from an earlier verify, which must still be in the chain: that is how deleted or
    rewritten rows at the end show.
    """

    def __init__(self, expected_head: str | None = None) -> None:
        self.rows = 0
        self.problem: str | None = None
        self._expected_head = expected_head
        self._head_seen = expected_head is None or expected_head == GENESIS
        self._last = GENESIS
        self._before_last: str | None = None
        self._last_id: object = None

    def add(self, entry: Mapping[str, object]) -> bool:
        """Check one more entry; False once the chain is broken (stop walking then)."""
        if self.problem is not None:
            return False
        self.rows += 1
        row_id, previous = entry["id"], entry["prev_hash"]
        if entry_hash(entry) != entry["hash"]:
            self.problem = f"row {row_id} was changed: its content no longer matches its hash"
        elif previous != self._last:
            if self._last_id is None:
                self.problem = f"rows before row {row_id} were deleted: the chain starts after them"
            elif previous == self._before_last:
                self.problem = (
                    f"row {self._last_id} was inserted: row {row_id} follows the row before it"
                )
            else:
                self.problem = (
                    f"rows between row {self._last_id} and row {row_id} were deleted, "
                    f"or row {self._last_id} was rewritten"
                )
        if self.problem is not None:
            return False
        self._before_last, self._last, self._last_id = self._last, str(entry["hash"]), row_id
        self._head_seen = self._head_seen or self._last == self._expected_head
        return True

    def verdict(self) -> Verdict:
        problem = self.problem
        if problem is None and not self._head_seen:
            problem = (
                f"the head {str(self._expected_head)[:16]}… noted earlier is not in the chain: "
                "rows at the end were deleted or rewritten"
            )
        return Verdict(self.rows, self._last, problem)


def verify(entries: Iterable[Mapping[str, object]], expected_head: str | None = None) -> Verdict:
    check = ChainCheck(expected_head)
    for entry in entries:
        if not check.add(entry):
            break
    return check.verdict()


async def entries_in_order(engine: AsyncEngine) -> AsyncIterator[dict[str, object]]:
    """Every entry by id, a page at a time, so a long log never sits in memory at once."""
    after = 0
    while True:
        async with reading(engine) as connection:
            page = (
                await connection.execute(
                    select(audit_log)
                    .where(audit_log.c.id > after)
                    .order_by(audit_log.c.id)
                    .limit(_PAGE)
                )
            ).all()
        if not page:
            return
        for row in page:
            yield dict(row._mapping)
        after = page[-1].id


async def verify_database(engine: AsyncEngine, expected_head: str | None = None) -> Verdict:
    check = ChainCheck(expected_head)
    async for entry in entries_in_order(engine):
        if not check.add(entry):
            break
    return check.verdict()
