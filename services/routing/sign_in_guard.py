"""Bounds password guessing at the staff sign-in: per account and per client address.

After ``per_account`` failures for one username, or ``per_address`` failures from one
address, within ``window``, further sign-ins are refused with 429 and Retry-After until the
oldest of those failures is older than the window — before the password is even checked, so
a guesser learns nothing while locked out. A successful sign-in clears the account's count
(not the address's: one office may hold many accounts and one guesser).

The failures are rows in routing's database, so every routing replica and a restart see
them. A subject is a keyed digest of the username or the address. Locking an account can be
used to keep its owner out for a window; the per-address limit is the larger one for that
reason, and an administrator can still act through the command line.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.routing.store import sign_in_failures
from yijian.clock import Clock
from yijian.db import reading


@dataclass(frozen=True)
class Lockout:
    reason: str
    retry_after: int


class SignInGuard:
    def __init__(
        self,
        engine: AsyncEngine,
        clock: Clock,
        secret: str,
        *,
        per_account: int,
        per_address: int,
        window: timedelta,
    ) -> None:
        self._engine = engine
        self._clock = clock
        self._key = hmac.new(secret.encode(), b"yijian sign-in guard v1", hashlib.sha256).digest()
        self._limits = {"account": per_account, "address": per_address}
        self.window = window

    def _subjects(self, username: str, address: str | None) -> dict[str, str]:
        found = {"account": self._digest("account", username.strip().lower())}
        if address:
            found["address"] = self._digest("address", address)
        return found

    def _digest(self, kind: str, value: str) -> str:
        mac = hmac.new(self._key, f"{kind}\x00{value}".encode(), hashlib.sha256).hexdigest()
        return f"{kind}:{mac[:48]}"

    async def lockout(self, username: str, address: str | None) -> Lockout | None:
        """Why a sign-in must wait, and how long; None when it may go ahead."""
        now = self._clock.now()
        since = now - self.window
        async with reading(self._engine) as connection:
            for kind, subject in self._subjects(username, address).items():
                count, oldest = (
                    await connection.execute(
                        select(func.count(), func.min(sign_in_failures.c.failed_at)).where(
                            sign_in_failures.c.subject == subject,
                            sign_in_failures.c.failed_at > since,
                        )
                    )
                ).one()
                if count >= self._limits[kind]:
                    oldest_at: datetime = _aware(oldest, now)
                    wait = math.ceil((oldest_at + self.window - now).total_seconds())
                    who = "this account" if kind == "account" else "this address"
                    return Lockout(
                        f"too many failed sign-ins for {who}; try again in "
                        f"{max(1, math.ceil(wait / 60))} minutes",
                        max(1, wait),
                    )
        return None

    async def failed(self, username: str, address: str | None) -> None:
        now = self._clock.now()
        subjects = list(self._subjects(username, address).values())
        async with self._engine.begin() as connection:
            # Failures older than the window count for nothing; dropping them here keeps the
            # table as small as the failures of the last window.
            await connection.execute(
                delete(sign_in_failures).where(sign_in_failures.c.failed_at <= now - self.window)
            )
            await connection.execute(
                insert(sign_in_failures), [{"subject": s, "failed_at": now} for s in subjects]
            )

    async def succeeded(self, username: str) -> None:
        subject = self._subjects(username, None)["account"]
        async with self._engine.begin() as connection:
            await connection.execute(
                delete(sign_in_failures).where(sign_in_failures.c.subject == subject)
            )


def _aware(value: object, now: datetime) -> datetime:
    """MIN() comes back as text on SQLite, past the column's type: read it as UTC."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=now.tzinfo)
    parsed = datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=now.tzinfo)
