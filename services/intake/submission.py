"""Taking a complaint: validate, store it with its event in one transaction, answer."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from uuid import uuid4

from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError

from services.intake.batch_rows import insert_rows
from services.intake.contacts import Contact, ContactSeal
from services.intake.domain import ComplaintIn, coarse, new_tracking_no
from services.intake.store import complaints, idempotency_keys
from services.intake.submission_limits import Sender, Slot, SubmissionLimits
from yijian.bus.outbox import ServiceDatabase, Transaction
from yijian.contracts.events import ComplaintSubmitted, ReportedLocation
from yijian.group_commit import GroupCommit


class IdempotencyConflict(Exception):
    """The key was used before for a different request."""


class UnknownCategory(ValueError):
    pass


@dataclass(frozen=True)
class ChannelContact:
    """Contact data the channel vouches for, never taken from the request body.

    The WeChat openid comes from the caller's signed-in session and an email from an
    Open311 client's form; both are kept with the rest of the contact data, apart from the
    complaint, and never travel in events.
    """

    wechat_openid: str | None = None
    email: str | None = None

    def digest(self) -> str:
        return hashlib.sha256(f"{self.wechat_openid}\x00{self.email}".encode()).hexdigest()


class ChannelRefused(Exception):
    """A channel's credential on the submission is bad (e.g. an expired WeChat session)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class ChannelVoucher(Protocol):
    """A channel that recognises its own credential on a submission (``Submissions.add``).

    Returns the contact data it vouches for, None when the request is not its business, or
    raises ChannelRefused when the request claims the channel but cannot prove it.
    """

    async def vouch(
        self, headers: Mapping[str, str], complaint: ComplaintIn
    ) -> ChannelContact | None: ...


@dataclass(frozen=True)
class Receipt:
    complaint_id: str
    tracking_no: str
    replayed: bool


@dataclass(frozen=True)
class _Pending:
    """A validated submission on its way to the database."""

    request: ComplaintIn
    key: str | None
    fingerprint: str
    channel_contact: ChannelContact | None
    sender: Sender


class _OnItsOwn(Exception):
    """This submission cannot share a batch (a key used twice in it, a sender at a limit, a
    collision): it gets a transaction of its own, which settles it exactly."""


class _OverLimit(Exception):
    def __init__(self, positions: set[int]) -> None:
        super().__init__(f"{len(positions)} senders at a limit")
        self.positions = positions


_EARLIER = (
    select(
        idempotency_keys.c.key,
        idempotency_keys.c.fingerprint,
        complaints.c.id,
        complaints.c.tracking_no,
    )
    .join(complaints, complaints.c.id == idempotency_keys.c.complaint_id)
    .where(idempotency_keys.c.key.in_(bindparam("keys", expanding=True)))
)


class Submissions:
    """Stores complaints, those arriving together in one transaction (yijian/group_commit.py).

    A batch is written with one statement per table. Whatever a batch cannot settle for
    everyone at once — an Idempotency-Key twice in it, a sender whose count would pass a
    limit, a tracking-number collision — goes on its own, through the same checks one at a
    time, so what a citizen gets never depends on who else was filing.
    """

    def __init__(
        self,
        database: ServiceDatabase,
        categories: list[str],
        seal: ContactSeal,
        limits: SubmissionLimits | None = None,
        max_batch: int = 64,
    ) -> None:
        self._database = database
        self._categories = categories
        self._seal = seal
        self._limits = limits
        self._vouchers: list[ChannelVoucher] = []
        self._batches: GroupCommit[_Pending, Receipt] = GroupCommit(self._write_batch, max_batch)

    def add(self, voucher: ChannelVoucher) -> None:
        self._vouchers.append(voucher)

    async def vouched(
        self, headers: Mapping[str, str], complaint: ComplaintIn
    ) -> ChannelContact | None:
        """What the first channel that recognises the request vouches for, if any."""
        for voucher in self._vouchers:
            contact = await voucher.vouch(headers, complaint)
            if contact is not None:
                return contact
        return None

    async def submit(
        self,
        request: ComplaintIn,
        idempotency_key: str | None,
        channel_contact: ChannelContact | None = None,
        client_ip: str | None = None,
    ) -> Receipt:
        """Store the complaint and its event; ``SubmissionLimited`` when its sender is over a
        limit (``client_ip`` is the network address it came from, when there is one)."""
        if request.category is not None and request.category not in self._categories:
            raise UnknownCategory(
                f"unknown category {request.category!r}; known: {', '.join(self._categories)}"
            )
        fingerprint = request.fingerprint()
        if channel_contact is not None:
            # The same body from another WeChat user is a different complaint.
            fingerprint = hashlib.sha256(
                (fingerprint + channel_contact.digest()).encode()
            ).hexdigest()
        pending = _Pending(
            request,
            idempotency_key,
            fingerprint,
            channel_contact,
            Sender(
                ip=client_ip,
                phone=request.contact.phone if request.contact else None,
                openid=channel_contact.wechat_openid if channel_contact else None,
            ),
        )
        try:
            return await self._batches.submit(pending)
        except _OnItsOwn:
            return await self._submit_alone(pending)

    async def close(self) -> None:
        await self._batches.close()

    async def _write_batch(self, batch: Sequence[_Pending]) -> list[Receipt | BaseException]:
        outcomes: list[Receipt | BaseException] = [_OnItsOwn() for _ in batch]
        remaining = list(range(len(batch)))
        # A second try without the senders at a limit; if that meets one too, all go alone.
        for _ in range(2):
            try:
                async with self._database.transaction() as tx:
                    settled = await self._store_batch(tx, [batch[i] for i in remaining])
            except _OverLimit as over:
                remaining = [i for n, i in enumerate(remaining) if n not in over.positions]
                continue
            except IntegrityError:
                break
            for i, outcome in zip(remaining, settled, strict=True):
                outcomes[i] = outcome
            break
        return outcomes

    async def _store_batch(
        self, tx: Transaction, batch: Sequence[_Pending]
    ) -> list[Receipt | BaseException]:
        keys = [pending.key for pending in batch if pending.key is not None]
        earlier = {}
        if keys:
            rows = await tx.connection.execute(_EARLIER, {"keys": keys})
            earlier = {row.key: row for row in rows}
        outcomes: list[Receipt | BaseException] = [_OnItsOwn() for _ in batch]
        fresh: list[int] = []
        keys_in_batch: set[str] = set()
        for position, pending in enumerate(batch):
            if pending.key in earlier:
                outcomes[position] = _answer(earlier[pending.key], pending.fingerprint)
            elif pending.key is None or pending.key not in keys_in_batch:
                if pending.key is not None:
                    keys_in_batch.add(pending.key)
                fresh.append(position)
        counting = None
        if self._limits is not None and fresh:
            senders = [batch[position].sender for position in fresh]
            counting = self._limits.counting(senders, tx.now)
        # Counted in the statement that stores the batch, one trip to the database fewer;
        # a sender over a limit (rare) then rolls the whole batch back.
        receipts, totals = await self._store(
            tx, [batch[position] for position in fresh], counting.counts if counting else None
        )
        if counting is not None and (over := counting.over(totals)):
            raise _OverLimit({fresh[n] for n in over})
        for position, receipt in zip(fresh, receipts, strict=True):
            outcomes[position] = receipt
        return outcomes

    async def _submit_alone(self, pending: _Pending) -> Receipt:
        # A tracking-number collision or two racing requests with one key roll back the
        # whole transaction; the second attempt then sees what the first one committed.
        for _ in range(3):
            try:
                async with self._database.transaction() as tx:
                    if pending.key is not None:
                        rows = await tx.connection.execute(_EARLIER, {"keys": [pending.key]})
                        earlier = rows.first()
                        if earlier is not None:
                            answer = _answer(earlier, pending.fingerprint)
                            if isinstance(answer, IdempotencyConflict):
                                raise answer
                            return answer
                    if self._limits is not None:
                        await self._limits.take(tx.connection, pending.sender, tx.now)
                    [receipt], _ = await self._store(tx, [pending])
                    return receipt
            except IntegrityError:
                continue
        raise RuntimeError("could not store the complaint after three attempts")

    async def _store(
        self,
        tx: Transaction,
        batch: Sequence[_Pending],
        counts: Mapping[Slot, int] | None = None,
    ) -> tuple[list[Receipt], dict[Slot, int]]:
        """Insert the complaints of ``batch`` and add ``counts`` to the senders' counters
        (batch_rows.py); the receipts, and each of those counters' new total."""
        if not batch:
            return [], {}
        rows: dict[str, list[dict[str, Any]]] = {
            "complaints": [],
            "contacts": [],
            "complaint_views": [],
            "timeline": [],
            "idempotency_keys": [],
        }
        receipts = [await self._rows(tx, pending, rows) for pending in batch]
        rows["outbox"] = tx.outbox_rows()
        return receipts, await insert_rows(tx.connection, rows, counts)

    async def _rows(
        self, tx: Transaction, pending: _Pending, rows: dict[str, list[dict[str, Any]]]
    ) -> Receipt:
        """One complaint's rows, added to ``rows``, and its event emitted."""
        now = tx.now
        request = pending.request
        complaint_id = uuid4().hex
        tracking_no = new_tracking_no(now)
        where = request.location
        rows["complaints"].append(
            {
                "id": complaint_id,
                "tracking_no": tracking_no,
                "description": request.description,
                "category": request.category,
                "urgency": request.urgency,
                "channel": request.channel,
                "grid_code": where.grid_code,
                "village_code": where.village_code,
                "lat": where.lat,
                "lon": where.lon,
                "submitted_at": now,
            }
        )
        contact = request.contact
        vouched = pending.channel_contact or ChannelContact()
        has_contact = (contact is not None and not contact.is_empty) or bool(
            vouched.wechat_openid or vouched.email
        )
        conceal = contact is not None and contact.conceal_from_village
        # The choice is kept even with nothing to hide yet, so the case view can say it.
        if has_contact or where.address or conceal:
            kept = Contact(
                name=contact.name if contact else None,
                phone=contact.phone if contact else None,
                address=where.address,
                email=vouched.email,
                wechat_openid=vouched.wechat_openid,
                conceal_from_village=conceal,
            )
            rows["contacts"].append(
                {"complaint_id": complaint_id, **self._seal.sealed_row(complaint_id, kept)}
            )
        rows["complaint_views"].append(
            {
                "complaint_id": complaint_id,
                "status": "submitted",
                "clock": 0,
                "deadline_clock": 0,
                "overdue": False,
                "updated_at": now,
            }
        )
        rows["timeline"].append(
            {"complaint_id": complaint_id, "at": now, "kind": "submitted", "text": "诉求已提交"}
        )
        if pending.key is not None:
            rows["idempotency_keys"].append(
                {
                    "key": pending.key,
                    "fingerprint": pending.fingerprint,
                    "complaint_id": complaint_id,
                    "created_at": now,
                }
            )
        await tx.emit(
            ComplaintSubmitted(
                complaint_id=complaint_id,
                tracking_no=tracking_no,
                category=request.category,
                urgency=request.urgency,
                channel=request.channel,
                location=ReportedLocation(
                    grid_code=where.grid_code,
                    village_code=where.village_code,
                    lat=coarse(where.lat),
                    lon=coarse(where.lon),
                ),
                has_contact=has_contact,
                submitted_at=now,
            ),
            key=complaint_id,
        )
        return Receipt(complaint_id, tracking_no, replayed=False)


def _answer(earlier: Any, fingerprint: str) -> Receipt | IdempotencyConflict:
    """The answer to a request whose Idempotency-Key was used before."""
    if earlier.fingerprint != fingerprint:
        return IdempotencyConflict(
            "this Idempotency-Key was already used for a different complaint"
        )
    return Receipt(earlier.id, earlier.tracking_no, replayed=True)
