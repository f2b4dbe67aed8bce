"""Citizens' contact details on staff screens: masked unless the role allows.

The rule: a ``supervisor`` or ``admin`` of the org the case is assigned to, or of an org
above it (the township or the county that supervises it), may reveal the name, phone and
the citizen's own description of the address; plain ``staff`` see the name and phone
masked (138****5678, 张*), the address hidden and the coordinates rounded to about 100 m
(as events carry them) — enough to find the place, not the house. A member of staff only sees a case
inside their own jurisdiction in the first place, so the org half of the rule is the
ordinary access check and the role half is decided here. Revealing is an explicit,
audited request; the case view itself always carries the masked form.
"""

from __future__ import annotations

from typing import Any

from services.routing.intake_client import Contact, Submission
from services.routing.users import Role

REVEALING_ROLES = frozenset({Role.SUPERVISOR.value, Role.ADMIN.value})


def may_reveal_contact(role: str) -> bool:
    return role in REVEALING_ROLES


def mask_phone(phone: str) -> str:
    """Keep the first three and last four digits of a mobile number: 138****5678."""
    digits = phone.strip()
    if len(digits) < 8:
        return "*" * len(digits)
    return f"{digits[:3]}{'*' * (len(digits) - 7)}{digits[-4:]}"


def mask_name(name: str) -> str:
    """Keep the family name only: 张三 → 张*, 欧阳娜娜 → 欧***; one character → *."""
    name = name.strip()
    if len(name) <= 1:
        return "*" * len(name)
    return name[0] + "*" * (len(name) - 1)


def masked(contact: Contact) -> Contact:
    return Contact(
        name=mask_name(contact.name) if contact.name else None,
        phone=mask_phone(contact.phone) if contact.phone else None,
    )


def screened(submission: Submission) -> dict[str, Any]:
    """The submission as any member of staff with access to the case may read it."""
    shown = submission.model_dump(mode="json", exclude={"contact"})
    location = shown["location"]
    shown["address_hidden"] = bool(location.get("address"))
    location["address"] = None
    for axis in ("lat", "lon"):
        if location.get(axis) is not None:
            location[axis] = round(location[axis], 3)
    contact = submission.contact
    shown["contact"] = masked(contact).model_dump() if contact else None
    return shown


def revealed(submission: Submission) -> dict[str, Any]:
    """What a reveal shows: the contact and the exact place, as the citizen gave them."""
    contact = submission.contact or Contact()
    location = submission.location
    return {
        "name": contact.name,
        "phone": contact.phone,
        "address": location.address,
        "lat": location.lat,
        "lon": location.lon,
    }
