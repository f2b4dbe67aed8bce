"""How many complaints one sender may file: per network address, phone number, WeChat user.

A flood of complaints (a script, or someone filing in a neighbour's name to have them
pestered by text messages) would bury a village's real work. Each kind of sender has a limit
per window; the complaint over it is refused with 429, the reason and ``Retry-After``.

The counters are rows in intake's own database, not process memory, so intake replicas
behind the gateway and a restarted process all see the same counts. The ``limits`` library
was the first choice, but it keeps its counters in memory, Redis, Memcached, MongoDB or
etcd, none of which this system runs; a row in the database every replica already shares
needs nothing new. Windows are fixed (an hour, a Beijing day): across a boundary a sender
may burst to twice a limit, which is still small and bounded.

A subject is a keyed digest (HMAC-SHA256) of who sent it, so the table holds no phone
number, openid or address. Counting happens in the submission's own transaction: a refused
or failed submission counts for nothing, and a retry with the same Idempotency-Key, answered
from the first, is not counted again.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Integer, String, bindparam, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.dml import ReturningInsert

from services.intake.store import submission_counts
from yijian.db import UtcDateTime
from yijian.settings import Settings

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
# Windows start at Beijing midnight (UTC+8, no daylight saving), so "per day" is the
# citizen's day.
_BEIJING_OFFSET = timedelta(hours=8)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Kept a little longer than the longest window, then swept.
_KEEP = 2 * DAY

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Limit:
    kind: str  # "ip", "phone" or "openid": the first part of a subject
    allowed: int
    window: timedelta
    who: str  # for the reason: "this network address"

    def reason(self, retry_after: int) -> str:
        span = "hour" if self.window == HOUR else "day"
        return (
            f"too many complaints from {self.who} this {span} (at most {self.allowed}); "
            f"try again in {_minutes(retry_after)}"
        )


@dataclass(frozen=True)
class Sender:
    """Who files a complaint, as far as intake can tell; each part may be unknown."""

    ip: str | None = None
    phone: str | None = None
    openid: str | None = None


# A counter: whose (a subject) and which window (its start).
Slot = tuple[str, datetime]


@dataclass(frozen=True)
class BatchCount:
    """What one batch of complaints adds to the counters (``SubmissionLimits.counting``)."""

    counts: dict[Slot, int]
    whose: list[list[Slot]]  # each sender's counters, in the batch's order
    allowed: dict[Slot, int]

    def over(self, totals: Mapping[Slot, int]) -> set[int]:
        """The positions of the senders whose count passed a limit, given each counter's
        new total. The caller rolls the batch back and lets those go one by one through
        ``SubmissionLimits.take``, which decides exactly which of them are refused; empty
        when the whole batch is within its limits."""
        over = {slot for slot, total in totals.items() if total > self.allowed[slot]}
        return {n for n, slots in enumerate(self.whose) if over.intersection(slots)}


class SubmissionLimited(Exception):
    def __init__(self, reason: str, retry_after: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


def window_start(now: datetime, window: timedelta) -> datetime:
    """The start of the window ``now`` falls in, counted from a Beijing midnight."""
    shifted = now.astimezone(UTC) + _BEIJING_OFFSET - _EPOCH
    return _EPOCH + (shifted // window) * window - _BEIJING_OFFSET


def phone_digits(phone: str | None) -> str | None:
    """The number without spaces, dashes or China's country code: one phone, one subject."""
    digits = re.sub(r"\D", "", phone or "")
    for prefix in ("0086", "86"):
        if digits.startswith(prefix) and len(digits) == len(prefix) + 11:
            digits = digits[len(prefix) :]
    return digits or None


def network_of(address: str | None) -> str | None:
    """The address itself, or for IPv6 its /64: one home or phone gets a whole /64."""
    try:
        parsed = ipaddress.ip_address(address or "")
    except ValueError:
        return None
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.IPv6Network((parsed, 64), strict=False))
    return str(parsed)


def parse_networks(text: str) -> list[Network]:
    return [ipaddress.ip_network(part.strip()) for part in text.split(",") if part.strip()]


class SubmissionLimits:
    def __init__(
        self,
        *,
        key: bytes,
        limits: Sequence[Limit],
        exempt: Sequence[Network] = (),
    ) -> None:
        self._key = key
        self._limits = {limit.kind: limit for limit in limits if limit.allowed > 0}
        self._exempt = list(exempt)

    @classmethod
    def from_settings(cls, settings: Settings, secret: str) -> SubmissionLimits:
        # Derived, so this key can never open or sign anything else.
        key = hmac.new(secret.encode(), b"yijian submission limits v1", hashlib.sha256)
        return cls(
            key=key.digest(),
            limits=[
                Limit("ip", settings.submissions_per_ip_per_hour, HOUR, "this network address"),
                Limit("phone", settings.submissions_per_phone_per_day, DAY, "this phone number"),
                Limit("openid", settings.submissions_per_openid_per_day, DAY, "this WeChat user"),
            ],
            exempt=parse_networks(settings.submission_limit_exempt),
        )

    def _subjects(self, sender: Sender) -> list[tuple[Limit, str]]:
        found: list[tuple[str, str]] = []
        network = network_of(sender.ip)
        if network is not None and not self._is_exempt(network):
            found.append(("ip", network))
        if (phone := phone_digits(sender.phone)) is not None:
            found.append(("phone", phone))
        if sender.openid:
            found.append(("openid", sender.openid))
        return [
            (self._limits[kind], f"{kind}:{self._digest(kind, value)}")
            for kind, value in found
            if kind in self._limits
        ]

    def _is_exempt(self, network: str) -> bool:
        address = ipaddress.ip_network(network, strict=False)
        for exempt in self._exempt:
            if isinstance(address, ipaddress.IPv4Network) and isinstance(
                exempt, ipaddress.IPv4Network
            ):
                if address.subnet_of(exempt):
                    return True
            elif (
                isinstance(address, ipaddress.IPv6Network)
                and isinstance(exempt, ipaddress.IPv6Network)
                and address.subnet_of(exempt)
            ):
                return True
        return False

    def _digest(self, kind: str, value: str) -> str:
        return keyed_digest(self._key, kind, value)

    async def take(self, connection: AsyncConnection, sender: Sender, now: datetime) -> None:
        """Count one complaint for each of the sender's subjects, in the caller's transaction.

        Raises ``SubmissionLimited`` (and the caller's rollback undoes the counting) when
        any subject is over its limit.
        """
        for limit, subject in self._subjects(sender):
            start = window_start(now, limit.window)
            count = await count_one(connection, subject, start)
            if count > limit.allowed:
                retry_after = max(1, math.ceil((start + limit.window - now).total_seconds()))
                raise SubmissionLimited(limit.reason(retry_after), retry_after)

    def counting(self, senders: Sequence[Sender], now: datetime) -> BatchCount:
        """What a batch of complaints adds to the counters: one for each subject of each
        sender. The batch's statement adds it (batch_rows.py) and ``BatchCount.over`` reads
        the totals that come back."""
        counts: dict[Slot, int] = {}
        whose: list[list[Slot]] = []
        allowed: dict[Slot, int] = {}
        for sender in senders:
            slots = []
            for limit, subject in self._subjects(sender):
                slot = (subject, window_start(now, limit.window))
                counts[slot] = counts.get(slot, 0) + 1
                allowed[slot] = limit.allowed
                slots.append(slot)
            whose.append(slots)
        return BatchCount(counts, whose, allowed)

    async def sweep(self, connection: AsyncConnection, now: datetime) -> int:
        """Delete counters of windows long over; returns how many went."""
        result = await connection.execute(
            delete(submission_counts).where(submission_counts.c.window_start < now - _KEEP)
        )
        return int(result.rowcount or 0)


def keyed_digest(key: bytes, kind: str, value: str) -> str:
    """Who a counter counts, as a keyed digest: the table never holds the value itself."""
    mac = hmac.new(key, f"{kind}\x00{value}".encode(), hashlib.sha256)
    return mac.hexdigest()[:40]


async def count_one(connection: AsyncConnection, subject: str, start: datetime) -> int:
    """Add one to a counter, creating it at one: a single statement, so racing replicas
    never lose a count (the row lock holds the second until the first commits). Other
    limits of intake (the lookup guard) count with it too, in the same table."""
    slot = (subject, start)
    return (await count_many(connection, {slot: 1}))[slot]


async def count_many(connection: AsyncConnection, counts: Mapping[Slot, int]) -> dict[Slot, int]:
    """Add to several counters at once, creating each at its count; each counter's new
    total. The upsert locks the rows it touches until the caller's transaction ends."""
    if connection.dialect.name == "postgresql":
        result = await connection.execute(COUNT_MANY_PG, count_arrays(counts))
    else:
        rows = [
            {"subject": subject, "window_start": start, "count": count}
            for (subject, start), count in counts.items()
        ]
        result = await connection.execute(_COUNT_MANY_SQLITE, rows)
    return totals_of(result, counts)


def count_arrays(counts: Mapping[Slot, int]) -> dict[str, list[Any]]:
    """``COUNT_MANY_PG``'s parameters: the counters as three arrays, so the statement's text
    is one for any batch size (the plan cache keeps one plan) and SQLAlchemy binds no rows."""
    return {
        "subjects": [subject for subject, _ in counts],
        "starts": [start for _, start in counts],
        "counts": list(counts.values()),
    }


def totals_of(returned: Iterable[Any], counts: Mapping[Slot, int]) -> dict[Slot, int]:
    """Each counter's new total, from the rows the upsert returned."""
    # Matched by counter, not by position: asking SQLAlchemy to return rows in the order
    # of the parameters made it send one statement per counter (a composite key has no
    # sentinel to sort by), the most expensive part of taking a batch of complaints.
    totals = {(row[0], row[1]): int(row[2]) for row in returned}
    return {slot: totals[slot] for slot in counts}


def _upsert_counts(
    statement: postgresql.Insert | sqlite.Insert,
) -> ReturningInsert[str, datetime, int]:
    return statement.on_conflict_do_update(
        index_elements=[submission_counts.c.subject, submission_counts.c.window_start],
        set_={"count": submission_counts.c["count"] + statement.excluded["count"]},
    ).returning(
        submission_counts.c.subject, submission_counts.c.window_start, submission_counts.c["count"]
    )


# On PostgreSQL also the statement a batch of complaints is stored with: its rows go in as
# this upsert's WITH parts (batch_rows.py).
COUNT_MANY_PG = _upsert_counts(
    postgresql.insert(submission_counts).from_select(
        ["subject", "window_start", "count"],
        select(
            func.unnest(bindparam("subjects", type_=postgresql.ARRAY(String))),
            func.unnest(bindparam("starts", type_=postgresql.ARRAY(UtcDateTime()))),
            func.unnest(bindparam("counts", type_=postgresql.ARRAY(Integer))),
        ),
    )
)
_COUNT_MANY_SQLITE = _upsert_counts(sqlite.insert(submission_counts))


async def give_back_one(connection: AsyncConnection, subject: str, start: datetime) -> None:
    """Take back a count ``count_one`` added, for an attempt that turned out not to count."""
    await connection.execute(
        update(submission_counts)
        .where(
            submission_counts.c.subject == subject,
            submission_counts.c.window_start == start,
            submission_counts.c.count > 0,
        )
        .values(count=submission_counts.c.count - 1)
    )


def _minutes(seconds: int) -> str:
    minutes = max(1, -(-seconds // 60))
    if minutes < 120:
        return f"{minutes} minutes"
    return f"{-(-minutes // 60)} hours"
