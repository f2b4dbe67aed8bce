"""The recipient directory: who is told when something happens at an org.

Every county, township and village org gets one duty recipient (值班员) seeded from the
jurisdiction, so no org that can be assigned or supervise a complaint is ever without
someone to tell. Grids are left out: complaints are never assigned to a grid.
Named staff recipients can join an org later; the duty line stays as the fallback.
"""

from __future__ import annotations

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from services.notify.store import Recipient, recipients
from yijian.jurisdiction import Jurisdiction, Org

DUTY_ROLE = "duty"


def duty_key(org_code: str) -> str:
    return f"duty:{org_code}"


def duty_recipients(jurisdiction: Jurisdiction, channel: str) -> list[Recipient]:
    orgs: list[Org] = [jurisdiction.county, *jurisdiction.townships(), *jurisdiction.villages()]
    return [
        Recipient(
            key=duty_key(org.code),
            org_code=org.code,
            display_name=f"{org.name}值班员",
            role=DUTY_ROLE,
            channel=channel,
        )
        for org in orgs
    ]


async def seed_directory(
    connection: AsyncConnection, jurisdiction: Jurisdiction, channel: str
) -> int:
    """Add missing duty recipients and bring existing ones in line; returns rows changed.

    Running it twice changes nothing the second time. Existing duty rows take the current
    name and channel, so turning the webhook on (or off) applies at the next start.
    """
    wanted = {r.key: r for r in duty_recipients(jurisdiction, channel)}
    existing = {
        row.recipient_key: row
        for row in await connection.execute(
            select(recipients).where(recipients.c.recipient_key.in_(list(wanted)))
        )
    }
    new_rows = [
        {
            "recipient_key": r.key,
            "org_code": r.org_code,
            "display_name": r.display_name,
            "role": r.role,
            "channel": r.channel,
        }
        for key, r in wanted.items()
        if key not in existing
    ]
    if new_rows:
        await connection.execute(insert(recipients), new_rows)
    changed = len(new_rows)
    for key, row in existing.items():
        want = wanted[key]
        if (row.display_name, row.channel, row.org_code) != (
            want.display_name,
            want.channel,
            want.org_code,
        ):
            await connection.execute(
                update(recipients)
                .where(recipients.c.recipient_key == key)
                .values(
                    display_name=want.display_name,
                    channel=want.channel,
                    org_code=want.org_code,
                )
            )
            changed += 1
    return changed
