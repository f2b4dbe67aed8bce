"""What a citizen may send, and the rules it must meet before anything is stored."""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from datetime import datetime
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from yijian.text import clean_free_text

BEIJING = ZoneInfo("Asia/Shanghai")
Channel = Literal["web", "wechat", "grid_worker", "open311", "phone"]
Urgency = Literal["normal", "urgent"]

# Crockford's base32 without I, L, O, U: nothing a citizen reading it aloud can confuse.
_TRACKING_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_TRACKING_LENGTH = 6
_PHONE = re.compile(r"^\+?[0-9][0-9 \-]{4,19}$")


def _clean_text(value: str | None) -> str | None:
    return clean_free_text(value)


class LocationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    grid_code: str | None = Field(default=None, pattern=r"^\d{15}$")
    village_code: str | None = Field(default=None, pattern=r"^\d{12}$")
    lat: float | None = Field(default=None, ge=-90, le=90, allow_inf_nan=False)
    lon: float | None = Field(default=None, ge=-180, le=180, allow_inf_nan=False)
    address: str | None = Field(default=None, max_length=200)

    @model_validator(mode="after")
    def _one_way_to_say_where(self) -> LocationIn:
        has_point = self.lat is not None or self.lon is not None
        if has_point and (self.lat is None or self.lon is None):
            raise ValueError("give both lat and lon, or neither")
        given = sum([self.grid_code is not None, self.village_code is not None, has_point])
        if given != 1:
            raise ValueError("give exactly one of grid_code, village_code, or lat+lon")
        self.address = _clean_text(self.address)
        return self


class ContactIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, max_length=50)
    phone: str | None = Field(default=None, max_length=20)
    conceal_from_village: bool = Field(
        default=False,
        description="不向所在村(社区)透露我的身份: staff of a village or community never see "
        "the contact or the address text, not even masked, and may not reveal them; the "
        "township and the county platform still may (audited). For complaints about the "
        "village committee itself.",
    )

    @field_validator("phone")
    @classmethod
    def _phone_digits(cls, value: str | None) -> str | None:
        value = _clean_text(value)
        if value is not None and not _PHONE.match(value):
            raise ValueError("phone must be digits, optionally with +, spaces or dashes")
        return value

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        return _clean_text(value)

    @property
    def is_empty(self) -> bool:
        return self.name is None and self.phone is None


class ComplaintIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str = Field(min_length=1, max_length=2000)
    location: LocationIn
    category: str | None = Field(default=None, max_length=50)
    urgency: Urgency = "normal"
    contact: ContactIn | None = None
    channel: Channel = "web"

    @field_validator("description")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        cleaned = clean_free_text(value)
        if cleaned is None:
            raise ValueError("description must not be blank")
        return cleaned

    @field_validator("category")
    @classmethod
    def _category(cls, value: str | None) -> str | None:
        return _clean_text(value)

    def fingerprint(self) -> str:
        """A stable digest of the request, to tell a retry from a different request."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(canonical.encode()).hexdigest()


def new_tracking_no(now: datetime) -> str:
    """Like ``GZ260302-7K3Q9M``: the county, the Beijing date, six unambiguous characters."""
    day = now.astimezone(BEIJING).strftime("%y%m%d")
    # One draw of 30 random bits, five per character: 32 letters make each equally likely.
    # (A draw per character cost a dozen reads of the system's randomness per complaint.)
    bits = secrets.randbits(_TRACKING_LENGTH * 5)
    suffix = "".join(_TRACKING_ALPHABET[(bits >> (5 * n)) & 31] for n in range(_TRACKING_LENGTH))
    return f"GZ{day}-{suffix}"


def coarse(coordinate: float | None) -> float | None:
    """About 100 m: enough to find the grid, too coarse to single out a house in events."""
    return None if coordinate is None else round(coordinate, 3)


STATUS_LABELS = {
    "submitted": "已提交",
    "pending_dispatch": "待分派",
    "assigned": "已分派",
    "accepted": "已签收",
    "replied": "已答复",
    "resolved": "已办结",
    "closed": "已归档",
    "escalated": "督办中",
    "reopened": "已重办",
}
