"""Who may see a complaint as its citizen: whoever holds a credential for that complaint.

A citizen has no account. Submitting a complaint hands back a *citizen token*: an HMAC over
the complaint id, so it opens that one complaint and nothing else, and the server keeps no
list of them. Other channels add their own proof through ``CitizenAccess.add`` (the WeChat
module: "this signed-in openid filed that complaint") without changing this module.

Every refusal is the same 404 a missing complaint gets, so a guessed id or a stolen tracking
number tells an outsider nothing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from fastapi import HTTPException, Request, status

from services.intake.submission_limits import (
    count_one,
    give_back_one,
    keyed_digest,
    window_start,
)
from yijian.bus.outbox import ServiceDatabase

NOT_FOUND = "no complaint with this id"
TOKEN_HEADER = "X-Citizen-Token"  # noqa: S105 (a header name)
# A version prefix, so the format can change without confusing old tokens.
_TOKEN_PREFIX = "ct1."  # noqa: S105


class CitizenCredential(Protocol):
    """One way a request can prove it belongs to the citizen who filed ``complaint_id``."""

    async def opens(self, request: Request, complaint_id: str) -> bool: ...


def presented_tokens(request: Request) -> list[str]:
    """The bearer token and the X-Citizen-Token header, whichever the request carries."""
    found: list[str] = []
    authorization = request.headers.get("authorization", "")
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        found.append(value.strip())
    header = request.headers.get(TOKEN_HEADER, "").strip()
    if header:
        found.append(header)
    return found


class CitizenTokens:
    """Issues and checks the token that opens one complaint.

    It never expires: a complaint may take weeks, and the citizen keeps the token on the
    phone. Losing it costs nothing — tracking number plus the phone's last four digits
    fetch it again — and changing ``YIJIAN_CITIZEN_SECRET`` revokes them all.
    """

    def __init__(self, secret: str) -> None:
        # Derived, so the same secret could never sign anything else by accident.
        self._key = hmac.new(secret.encode(), b"yijian citizen token v1", hashlib.sha256).digest()

    def issue(self, complaint_id: str) -> str:
        digest = hmac.new(self._key, complaint_id.encode(), hashlib.sha256).digest()
        return _TOKEN_PREFIX + base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def verify(self, token: str, complaint_id: str) -> bool:
        return hmac.compare_digest(token.encode(), self.issue(complaint_id).encode())


@dataclass(frozen=True)
class TokenCredential:
    """The citizen token, as ``Authorization: Bearer …`` or ``X-Citizen-Token: …``."""

    tokens: CitizenTokens

    async def opens(self, request: Request, complaint_id: str) -> bool:
        return any(self.tokens.verify(token, complaint_id) for token in presented_tokens(request))


class CitizenAccess:
    """The credentials intake accepts; the first that vouches for the request lets it in."""

    def __init__(self, tokens: CitizenTokens) -> None:
        self.tokens = tokens
        self._credentials: list[CitizenCredential] = [TokenCredential(tokens)]

    def add(self, credential: CitizenCredential) -> None:
        self._credentials.append(credential)

    async def allows(self, request: Request, complaint_id: str) -> bool:
        for credential in self._credentials:
            if await credential.opens(request, complaint_id):
                return True
        return False

    def dependency(self) -> Callable[..., Awaitable[str]]:
        """A route dependency that yields ``complaint_id`` when the caller may see it."""

        async def own_complaint(complaint_id: str, request: Request) -> str:
            if not await self.allows(request, complaint_id):
                raise HTTPException(status.HTTP_404_NOT_FOUND, NOT_FOUND)
            return complaint_id

        return own_complaint


@dataclass(frozen=True)
class LookupAttempt:
    """One counted attempt at a tracking number; ``retry_after`` is set when over the limit."""

    subject: str
    window_start: datetime
    retry_after: int | None


class LookupGuard:
    """Bounds guessing the last four phone digits of a tracking number.

    Ten thousand combinations are few, so each tracking number (existing or not: counting
    only real ones would itself be an oracle) gets ``attempts`` misses per ``window``.

    The counts are rows in intake's database, kept by the same counter as the submission
    limits (``submission_limits.count_one``), so every replica and a restarted process see
    them. Each attempt takes a count *before* the lookup and a hit gives it back, so racing
    guesses cannot slip between a check and a count. Windows are fixed, as the submission
    limits' are: across a boundary a guesser gets at most twice the attempts, which still
    leaves ten thousand combinations days of work.
    """

    def __init__(
        self,
        database: ServiceDatabase,
        secret: str,
        attempts: int = 5,
        window: timedelta = timedelta(minutes=15),
    ) -> None:
        self._database = database
        # Derived, so this key can never open or sign anything else.
        self._key = hmac.new(secret.encode(), b"yijian lookup guard v1", hashlib.sha256).digest()
        self._attempts = attempts
        self._window = window

    async def attempt(self, tracking_no: str) -> LookupAttempt:
        """Count one attempt at ``tracking_no``; when over the limit, do not look it up."""
        now = self._database.clock.now()
        start = window_start(now, self._window)
        subject = f"lookup:{keyed_digest(self._key, 'lookup', tracking_no)}"
        async with self._database.engine.begin() as connection:
            count = await count_one(connection, subject, start)
        retry_after = None
        if count > self._attempts:
            retry_after = max(1, math.ceil((start + self._window - now).total_seconds()))
        return LookupAttempt(subject, start, retry_after)

    async def found(self, attempt: LookupAttempt) -> None:
        """The attempt was right: only misses count against the tracking number."""
        async with self._database.engine.begin() as connection:
            await give_back_one(connection, attempt.subject, attempt.window_start)
