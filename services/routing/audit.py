"""The audit log: every staff action, sign-in and contact reveal, with its outcome.

Append-only by construction: ``append`` is the only code that touches the table, and it
only inserts; the database refuses updates and deletes (triggers from the migration). An
action that changes a case is audited inside the same transaction, so the log never claims a
change that did not commit; a refused action is audited on its own. The log holds who,
where, what and how it ended — never a citizen's details or the text staff typed.

Each entry is chained to the one before (``audit_chain``): ``yijian audit verify`` walks
the chain and names the first row changed, inserted or deleted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from uuid import uuid4

from fastapi import Request
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from services.routing.audit_chain import entry_hash, last_entry, lock_for_append
from services.routing.store import audit_log
from yijian.auth import StaffUser
from yijian.bus.outbox import ServiceDatabase
from yijian.db import reading

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


@dataclass(frozen=True)
class Actor:
    username: str
    org_code: str | None
    role: str | None

    @classmethod
    def of(cls, staff: StaffUser) -> Actor:
        return cls(staff.user, staff.org_code, staff.role)


def request_id(request: Request) -> str:
    """The caller's ``X-Request-ID`` when it is a sane token, else a fresh one."""
    sent = request.headers.get("x-request-id", "")
    return sent if _REQUEST_ID.match(sent) else uuid4().hex


class AuditLog:
    def __init__(self, database: ServiceDatabase) -> None:
        self._database = database

    async def append(
        self,
        connection: AsyncConnection,
        actor: Actor,
        action: str,
        outcome: str,
        request: str,
        complaint_id: str | None = None,
    ) -> None:
        """Append one entry inside the caller's transaction, chained to the last one.

        The append lock is held until that transaction ends, so the id and the parent are
        taken together and two writers can never fork the chain.
        """
        await lock_for_append(connection)
        last_id, prev_hash = await last_entry(connection)
        entry: dict[str, object] = {
            # Chosen here, under the lock, rather than by the database: the hash covers it,
            # and the row is never updated after it is written.
            "id": last_id + 1,
            "at": self._database.clock.now(),
            "username": actor.username[:64],
            "org_code": actor.org_code,
            "role": actor.role,
            "action": action,
            "complaint_id": complaint_id,
            "outcome": outcome[:40],
            "request_id": request,
            "prev_hash": prev_hash,
        }
        await connection.execute(insert(audit_log).values(**entry, hash=entry_hash(entry)))

    async def record(
        self,
        actor: Actor,
        action: str,
        outcome: str,
        request: str,
        complaint_id: str | None = None,
    ) -> None:
        """Append one entry in a transaction of its own (refusals, sign-ins)."""
        async with self._database.engine.begin() as connection:
            await self.append(connection, actor, action, outcome, request, complaint_id)

    async def entries(
        self, complaint_id: str | None = None, limit: int = 200
    ) -> list[dict[str, object]]:
        """The newest entries first, optionally for one complaint."""
        query = select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
        if complaint_id is not None:
            query = query.where(audit_log.c.complaint_id == complaint_id)
        async with reading(self._database.engine) as connection:
            rows = await connection.execute(query)
            return [
                {
                    "at": row.at.isoformat(),
                    "username": row.username,
                    "org_code": row.org_code,
                    "role": row.role,
                    "action": row.action,
                    "complaint_id": row.complaint_id,
                    "outcome": row.outcome,
                    "request_id": row.request_id,
                }
                for row in rows
            ]
