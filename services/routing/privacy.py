"""Citizens' contact details on staff screens: masked unless the role allows.

The rule: a ``supervisor`` or ``admin`` of the org the case is assigned to, or of an org
above it (the township or the county that supervises it), may reveal the name, phone and
the citizen's own description of the address; plain ``staff`` see the name and phone
masked (138****5678, 张*), the address hidden and the coordinates rounded to about 100 m
(as events carry them) — enough to find the place, not the house. A member of staff only sees a case
inside their own jurisdiction in the first place, so the org half of the rule is the
ordinary access check and the role half is decided here. Revealing is an explicit,
audited request; the case view itself always carries the masked form.

One exception overrides the roles: a citizen may ask that their village (community) never
learn who they are (``conceal_from_village``), typically when the complaint is about the
village committee itself. Then staff of any org at village level, supervisors included, get
no contact and no address text at all — not masked, not on request — and the case view
tells every viewer that the citizen asked for it. The township and the county platform are
unaffected: they may still reveal, audited.
"""

from __future__ import annotations

from typing import Any

from services.routing.intake_client import Contact, Submission
from services.routing.users import Role
from yijian.level import Level

REVEALING_ROLES = frozenset({Role.SUPERVISOR.value, Role.ADMIN.value})

WITHHELD_NOTICE = (
    "群众要求不向所在村(社区)透露其身份：联系方式和详细地址不向村(社区)显示；"
    "如需联系群众，请由乡镇办理。"
)
KEEP_FROM_VILLAGE_NOTICE = (
    "群众要求不向所在村(社区)透露其身份：请勿将其联系方式和详细地址告知村(社区)。"
)


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


def withheld_from(submission: Submission, viewer: Level) -> bool:
    """Whether nothing identifying the citizen may reach staff of this level, even masked."""
    if viewer != Level.VILLAGE:
        return False
    # Unknown (intake did not say) counts as asked: hiding a contact the village might have
    # seen costs a phone call via the township; showing one it must not see cannot be undone.
    return submission.conceal_from_village is not False


def privacy_notice(submission: Submission, viewer: Level) -> str | None:
    """What the case view says about the citizen's choice, worded for who is looking."""
    if not submission.conceal_from_village:
        return None
    return WITHHELD_NOTICE if viewer == Level.VILLAGE else KEEP_FROM_VILLAGE_NOTICE


def screened(submission: Submission, viewer: Level) -> dict[str, Any]:
    """The submission as any member of staff of ``viewer``'s level with access may read it."""
    withheld = withheld_from(submission, viewer)
    shown = submission.model_dump(mode="json", exclude={"contact"})
    location = shown["location"]
    # Withheld, not even "there is an address" is said: the village gets the place from the
    # grid, village or rounded point like any case, and nothing about the person.
    shown["address_hidden"] = bool(location.get("address")) and not withheld
    location["address"] = None
    for axis in ("lat", "lon"):
        if location.get(axis) is not None:
            location[axis] = round(location[axis], 3)
    contact = submission.contact
    shown["contact"] = masked(contact).model_dump() if contact and not withheld else None
    shown["contact_withheld"] = withheld
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
