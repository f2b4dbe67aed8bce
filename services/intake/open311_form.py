"""A POSTed GeoReport v2 form (``POST requests``) read into a complaint.

Everything a person types — the description, the address, the name, the phone, the email —
goes through the kernel's ``clean_free_text`` and is bounded as the JSON API bounds it, so
text that could not be stored or shown safely is refused here with a reason in the
GeoReport error format, never stored and never a 500.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import ValidationError

from services.intake.domain import ComplaintIn, ContactIn, LocationIn
from services.intake.open311_catalog import Catalog
from services.intake.open311_format import Open311Error
from services.intake.submission import ChannelContact
from yijian.text import clean_free_text

_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
_ATTRIBUTE = re.compile(r"^attribute\[([a-z_]{1,30})\]$")
_ATTRIBUTES = {"urgency", "village_code", "grid_code", "conceal_from_village"}
_CJK = re.compile(r"[\u3400-\u9fff]")
_STAND_IN = LocationIn(lat=0.0, lon=0.0)
# The fields people type, each with the JSON API's bound (services/intake/domain.py); the
# two name parts each get the whole name's, since either may hold all of it.
TYPED_FIELDS = {
    "description": 2000,
    "address_string": 200,
    "first_name": 50,
    "last_name": 50,
    "phone": 20,
    "email": 254,
}
_YES_NO = {"true": True, "false": False}


@dataclass(frozen=True)
class NewRequest:
    complaint: ComplaintIn
    contact: ChannelContact
    located: bool  # False: only an address, so the county platform must place it


def new_request(fields: Mapping[str, str], catalog: Catalog) -> NewRequest:
    """Read a POST requests form (GeoReport v2 field names) into a complaint."""
    code = fields.get("service_code", "").strip()
    if not code:
        raise Open311Error(400, "service_code is required; GET services.json lists them")
    service = catalog.get(code)
    if service is None:
        raise Open311Error(400, f"service_code {code[:40]!r} not found; see services.json")
    attributes: dict[str, str] = {}
    for name, value in fields.items():
        match = _ATTRIBUTE.match(name)
        if name.startswith("attribute[") and (match is None or match[1] not in _ATTRIBUTES):
            raise Open311Error(400, f"unknown attribute {name[:40]!r}; see services/{code}.json")
        if match is not None and value.strip():
            attributes[match[1]] = value.strip()
    typed = typed_fields(fields)
    description = typed["description"]
    if description is None:
        raise Open311Error(400, "description is required: say what happened")
    location, located = _location(typed["address_string"], fields, attributes)
    contact = _contact(typed, _conceal(attributes))
    email = _email(typed["email"])
    try:
        complaint = ComplaintIn(
            description=description,
            # LocationIn refuses an address alone (see _location), so the rest of the
            # complaint is checked around a stand-in point and the address put back after.
            location=location if located else _STAND_IN,
            category=service.category,
            urgency=attributes.get("urgency", "normal"),
            contact=contact,
            channel="open311",
        )
    except ValidationError as error:
        raise Open311Error(400, _reason(error)) from error
    if not located:
        complaint = complaint.model_copy(update={"location": location})
    return NewRequest(complaint, ChannelContact(email=email), located)


def typed_fields(fields: Mapping[str, str]) -> dict[str, str | None]:
    """Each typed field bounded and cleaned (None when blank); 400 naming the first bad one."""
    typed: dict[str, str | None] = {}
    for name, limit in TYPED_FIELDS.items():
        value = fields.get(name, "")
        # Measured as sent, as the JSON API's max_length measures it.
        if len(value) > limit:
            raise Open311Error(400, f"{name} is longer than {limit} characters")
        try:
            typed[name] = clean_free_text(value)
        except ValueError as error:
            raise Open311Error(400, f"{name}: {error}") from None
    return typed


def _location(
    address: str | None, fields: Mapping[str, str], attributes: Mapping[str, str]
) -> tuple[LocationIn, bool]:
    lat, lon = fields.get("lat", "").strip(), fields.get("long", "").strip()
    if bool(lat) != bool(lon):
        raise Open311Error(400, "give both lat and long, or neither")
    try:
        # A grid names the place most precisely, then a point, then a village.
        if "grid_code" in attributes:
            return LocationIn(grid_code=attributes["grid_code"], address=address), True
        if lat:
            return LocationIn(
                lat=_number(lat, "lat"), lon=_number(lon, "long"), address=address
            ), True
        if "village_code" in attributes:
            return LocationIn(village_code=attributes["village_code"], address=address), True
    except ValidationError as error:
        raise Open311Error(400, _reason(error)) from error
    if address is None:
        if fields.get("address_id", "").strip():
            raise Open311Error(400, "address_id is not supported: give lat/long or address_string")
        raise Open311Error(
            400, "a location is required: lat and long, address_string, or attribute[village_code]"
        )
    # The web form always names a place, so LocationIn insists on one; an Open311 client may
    # only know an address, which routing cannot read: it goes to the county's dispatch queue.
    # The address was cleaned and bounded with the other typed fields.
    return LocationIn.model_construct(address=address), False


def _number(value: str, name: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise Open311Error(400, f"{name} must be a number in WGS84 degrees") from None


def _conceal(attributes: Mapping[str, str]) -> bool:
    value = attributes.get("conceal_from_village", "false").lower()
    if value not in _YES_NO:
        raise Open311Error(400, "attribute[conceal_from_village] must be true or false")
    return _YES_NO[value]


def _contact(typed: Mapping[str, str | None], conceal: bool) -> ContactIn | None:
    first = typed["first_name"] or ""
    last = typed["last_name"] or ""
    # Chinese names put the family name first and take no space.
    if _CJK.search(first + last):
        name = last + first
    else:
        name = " ".join(part for part in (first, last) if part)
    phone = typed["phone"]
    if not name and not phone and not conceal:
        return None
    try:
        return ContactIn(name=name or None, phone=phone, conceal_from_village=conceal)
    except ValidationError as error:
        raise Open311Error(400, _reason(error)) from error


def _email(email: str | None) -> str | None:
    if email is None:
        return None
    if not _EMAIL.match(email):
        raise Open311Error(400, "email is not a valid address")
    return email


def _reason(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"] if part != "location")
    message = str(first["msg"]).removeprefix("Value error, ")
    return f"{where}: {message}" if where else message
