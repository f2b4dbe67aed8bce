"""Staff accounts of the workbench: who may sign in, for which org, in which role.

Passwords are kept as argon2id hashes (argon2-cffi's RFC 9106 low-memory profile). Hashing
is deliberately slow, so it runs in a worker thread and never stalls the event loop.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import structlog
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import insert, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncEngine

from services.routing.store import staff_users
from yijian.clock import Clock
from yijian.db import reading
from yijian.jurisdiction import Jurisdiction, OrgKind

log = structlog.get_logger(__name__)

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 200
# The documented password of the development users seeded by YIJIAN_DEMO_USERS=1.
DEMO_PASSWORD = "yijian-demo-2026"  # noqa: S105 - public by design, development only
USERNAME_PATTERN = r"^[A-Za-z0-9_.@-]{2,64}$"

_hasher = PasswordHasher()
# Verified against when the username is unknown, so a wrong name costs the same time as a
# wrong password and the response time does not tell whether the user exists. The hash of a
# random secret nobody kept, written out: hashing it at import took 0.2-0.4 s of every
# process's start (all four services, each CLI command, a restart after a crash).
# tests/unit/test_staff_rules.py checks it still has the hasher's parameters.
DECOY_HASH = "$argon2id$v=19$m=65536,t=3,p=4$mk7gAknXz3mMj6IkPDR9yg$exzPwD6Otqxv9eUnRublnM7+6p4WecpkCVNDoPI90Q8"  # noqa: E501


class Role(StrEnum):
    STAFF = "staff"  # a worker at a village, township or the county platform
    SUPERVISOR = "supervisor"  # leads an org: sees citizens' contact details
    ADMIN = "admin"  # the platform's administrator: sees contact details too


@dataclass(frozen=True)
class StaffAccount:
    username: str
    display_name: str
    org_code: str
    role: Role
    must_change_password: bool
    disabled: bool
    created_at: datetime


class AccountError(ValueError):
    """An account that may not be created or changed as asked; the message says why."""


def check_password_rules(password: str) -> None:
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise AccountError(
            f"a password needs {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters"
        )


def _account(row: Row[tuple[object, ...]]) -> StaffAccount:
    return StaffAccount(
        username=row.username,
        display_name=row.display_name,
        org_code=row.org_code,
        role=Role(row.role),
        must_change_password=row.must_change_password,
        disabled=row.disabled,
        created_at=row.created_at,
    )


class StaffDirectory:
    def __init__(self, engine: AsyncEngine, clock: Clock, jurisdiction: Jurisdiction) -> None:
        self._engine = engine
        self._clock = clock
        self._jurisdiction = jurisdiction

    async def add(
        self,
        username: str,
        org_code: str,
        role: Role,
        password: str,
        *,
        display_name: str | None = None,
        must_change_password: bool = True,
    ) -> StaffAccount:
        org = self._jurisdiction.get(org_code)
        if org is None or org.kind == OrgKind.GRID:
            raise AccountError(f"{org_code} is not a village, township or county code")
        check_password_rules(password)
        if await self.get(username) is not None:
            raise AccountError(f"the username {username!r} is taken")
        password_hash = await asyncio.to_thread(_hasher.hash, password)
        return await self._insert(
            username, display_name or username, org_code, role, password_hash, must_change_password
        )

    async def _insert(
        self,
        username: str,
        display_name: str,
        org_code: str,
        role: Role,
        password_hash: str,
        must_change_password: bool,
    ) -> StaffAccount:
        async with self._engine.begin() as connection:
            await connection.execute(
                insert(staff_users).values(
                    username=username,
                    display_name=display_name,
                    org_code=org_code,
                    role=role.value,
                    password_hash=password_hash,
                    must_change_password=must_change_password,
                    disabled=False,
                    created_at=self._clock.now(),
                )
            )
        account = await self.get(username)
        assert account is not None
        return account

    async def get(self, username: str) -> StaffAccount | None:
        async with reading(self._engine) as connection:
            row = (
                await connection.execute(
                    select(staff_users).where(staff_users.c.username == username)
                )
            ).first()
        return None if row is None else _account(row)

    async def all(self) -> list[StaffAccount]:
        async with reading(self._engine) as connection:
            rows = await connection.execute(
                select(staff_users).order_by(staff_users.c.org_code, staff_users.c.username)
            )
            return [_account(row) for row in rows]

    async def authenticate(self, username: str, password: str) -> StaffAccount | None:
        """The account when the password is right and the account enabled, else None.

        The caller cannot tell an unknown user from a wrong password or a disabled account:
        all three take one hash verification and answer None.
        """
        async with reading(self._engine) as connection:
            row = (
                await connection.execute(
                    select(staff_users).where(staff_users.c.username == username)
                )
            ).first()
        stored = row.password_hash if row is not None else DECOY_HASH
        if not await asyncio.to_thread(_verify, stored, password) or row is None:
            return None
        account = _account(row)
        if account.disabled:
            return None
        if _hasher.check_needs_rehash(stored):
            # The hashing parameters were raised since this hash was made: upgrade it now,
            # the one moment the plain password is at hand.
            await self._store_hash(username, await asyncio.to_thread(_hasher.hash, password))
        return account

    async def change_password(self, username: str, current: str, new: str) -> None:
        check_password_rules(new)
        if current == new:
            raise AccountError("the new password must differ from the current one")
        if await self.authenticate(username, current) is None:
            raise AccountError("the current password is wrong")
        await self._store_hash(username, await asyncio.to_thread(_hasher.hash, new))

    async def set_disabled(self, username: str, disabled: bool) -> bool:
        """Disable (or re-enable) an account; its open sessions stop working at once."""
        async with self._engine.begin() as connection:
            result = await connection.execute(
                update(staff_users)
                .where(staff_users.c.username == username)
                .values(disabled=disabled)
            )
        return bool(result.rowcount)

    async def _store_hash(self, username: str, password_hash: str) -> None:
        async with self._engine.begin() as connection:
            await connection.execute(
                update(staff_users)
                .where(staff_users.c.username == username)
                .values(password_hash=password_hash, must_change_password=False)
            )

    async def seed_demo(self) -> int:
        """One user per village, township and the county, for development only.

        The username is the org's code and the password is ``DEMO_PASSWORD``. Villages get
        plain staff, townships supervisors, the county an administrator. All share one hash:
        these accounts guard nothing, and hashing a hundred passwords would slow every start.
        """
        existing = {account.username for account in await self.all()}
        orgs = [self._jurisdiction.county, *self._jurisdiction.townships()]
        orgs += self._jurisdiction.villages()
        missing = [org for org in orgs if org.code not in existing]
        if not missing:
            return 0
        shared_hash = await asyncio.to_thread(_hasher.hash, DEMO_PASSWORD)
        roles = {
            OrgKind.VILLAGE: Role.STAFF,
            OrgKind.TOWNSHIP: Role.SUPERVISOR,
            OrgKind.COUNTY: Role.ADMIN,
        }
        for org in missing:
            await self._insert(
                org.code, f"{org.name}值班员", org.code, roles[org.kind], shared_hash, False
            )
        log.warning(
            "demo staff users seeded: never enable YIJIAN_DEMO_USERS in production",
            users=len(missing),
        )
        return len(missing)


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
