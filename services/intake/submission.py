"""Taking a complaint: validate, store it with its event in one transaction, answer."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol
from uuid import uuid4

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from services.intake.contacts import Contact, ContactSeal, add_contact
from services.intake.domain import ComplaintIn, coarse, new_tracking_no
from services.intake.store import complaint_views, complaints, idempotency_keys, timeline
from services.intake.submission_limits import Sender, SubmissionLimits
from yijian.bus.outbox import ServiceDatabase, Transaction
from yijian.contracts.events import ComplaintSubmitted, ReportedLocation


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


class Submissions:
    def __init__(
        self,
        database: ServiceDatabase,
        categories: list[str],
        seal: ContactSeal,
        limits: SubmissionLimits | None = None,
    ) -> None:
        self._database = database
        self._categories = categories
        self._seal = seal
        self._limits = limits
        self._vouchers: list[ChannelVoucher] = []

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
        # A tracking-number collision or two racing requests with one key roll back the
        # whole transaction; the second attempt then sees what the first one committed.
        for _ in range(3):
            try:
                async with self._database.transaction() as tx:
                    if idempotency_key is not None:
                        earlier = await self._earlier(tx, idempotency_key, fingerprint)
                        if earlier is not None:
                            return earlier
                    if self._limits is not None:
                        sender = Sender(
                            ip=client_ip,
                            phone=request.contact.phone if request.contact else None,
                            openid=channel_contact.wechat_openid if channel_contact else None,
                        )
                        await self._limits.take(tx.connection, sender, tx.now)
                    return await self._store(
                        tx, request, idempotency_key, fingerprint, channel_contact
                    )
            except IntegrityError:
                continue
        raise RuntimeError("could not store the complaint after three attempts")

    async def _earlier(self, tx: Transaction, key: str, fingerprint: str) -> Receipt | None:
        row = (
            await tx.connection.execute(
                select(idempotency_keys.c.fingerprint, complaints.c.id, complaints.c.tracking_no)
                .join(complaints, complaints.c.id == idempotency_keys.c.complaint_id)
                .where(idempotency_keys.c.key == key)
            )
        ).first()
        if row is None:
            return None
        if row.fingerprint != fingerprint:
            raise IdempotencyConflict(
                "this Idempotency-Key was already used for a different complaint"
            )
        return Receipt(row.id, row.tracking_no, replayed=True)

    async def _store(
        self,
        tx: Transaction,
        request: ComplaintIn,
        key: str | None,
        fingerprint: str,
        channel_contact: ChannelContact | None = None,
    ) -> Receipt:
        now = tx.now
        complaint_id = uuid4().hex
        tracking_no = new_tracking_no(now)
        where = request.location
        await tx.connection.execute(
            insert(complaints).values(
                id=complaint_id,
                tracking_no=tracking_no,
                description=request.description,
                category=request.category,
                urgency=request.urgency,
                channel=request.channel,
                grid_code=where.grid_code,
                village_code=where.village_code,
                lat=where.lat,
                lon=where.lon,
                submitted_at=now,
            )
        )
        contact = request.contact
        vouched = channel_contact or ChannelContact()
        has_contact = (contact is not None and not contact.is_empty) or bool(
            vouched.wechat_openid or vouched.email
        )
        conceal = contact is not None and contact.conceal_from_village
        # The choice is kept even with nothing to hide yet, so the case view can say it.
        if has_contact or where.address or conceal:
            await add_contact(
                tx.connection,
                self._seal,
                complaint_id,
                Contact(
                    name=contact.name if contact else None,
                    phone=contact.phone if contact else None,
                    address=where.address,
                    email=vouched.email,
                    wechat_openid=vouched.wechat_openid,
                    conceal_from_village=conceal,
                ),
            )
        await tx.connection.execute(
            insert(complaint_views).values(
                complaint_id=complaint_id,
                status="submitted",
                clock=0,
                deadline_clock=0,
                overdue=False,
                updated_at=now,
            )
        )
        await tx.connection.execute(
            insert(timeline).values(
                complaint_id=complaint_id, at=now, kind="submitted", text="诉求已提交"
            )
        )
        if key is not None:
            await tx.connection.execute(
                insert(idempotency_keys).values(
                    key=key, fingerprint=fingerprint, complaint_id=complaint_id, created_at=now
                )
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
