"""GeoReport v2 documents in JSON and XML, and its error format.

Both formats are built from the same plain data (dicts in field order, lists, scalars), so a
field can never be in one and missing from the other. XML comes from ``xml.etree``, which
escapes ``& < >`` and quotes; characters XML 1.0 cannot carry at all (most control
characters) are dropped first, since no escaping makes them legal.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Literal, TypeAlias

from fastapi.responses import Response

Format = Literal["json", "xml"]
FORMATS: tuple[Format, ...] = ("json", "xml")
MEDIA_TYPES = {"json": "application/json; charset=utf-8", "xml": "text/xml; charset=utf-8"}

# China keeps UTC+8 all year; Open311 clients read local times with their offset.
BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")

Scalar: TypeAlias = str | int | float | bool | None
Value: TypeAlias = "Scalar | Sequence[Value] | Mapping[str, Value]"
Document: TypeAlias = Mapping[str, Value]

# The element that holds each member of a list field, as the GeoReport v2 examples name them.
_MEMBER = {
    "endpoints": "endpoint",
    "formats": "format",
    "attributes": "attribute",
    "values": "value",
}
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


class Open311Error(Exception):
    """A refusal in the GeoReport v2 error format: ``[{code, description}]``."""

    def __init__(self, status: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.retry_after = retry_after


def w3_datetime(instant: datetime | None) -> str | None:
    """ISO 8601 with the offset, to the second, as the spec's w3 note asks."""
    if instant is None:
        return None
    return instant.astimezone(BEIJING).isoformat(timespec="seconds")


def parse_format(value: str) -> Format:
    if value == "json":
        return "json"
    if value == "xml":
        return "xml"
    raise Open311Error(404, f"unknown format {value[:20]!r}: use .json or .xml")


def respond(fmt: Format, root: str, member: str | None, body: Value, status: int = 200) -> Response:
    """``body`` as JSON, or as XML under ``<root>`` (one ``<member>`` per item of a list)."""
    if fmt == "json":
        content = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
        return Response(content.encode("utf-8"), status, media_type=MEDIA_TYPES["json"])
    element = ET.Element(root)
    if member is None:
        assert isinstance(body, Mapping)
        _fill(element, body)
    else:
        assert isinstance(body, Sequence)
        for item in body:
            assert isinstance(item, Mapping)
            _fill(ET.SubElement(element, member), item)
    text = ET.tostring(element, encoding="unicode")
    document = f'<?xml version="1.0" encoding="utf-8"?>\n{text}'.encode()
    return Response(document, status, media_type=MEDIA_TYPES["xml"])


def error_response(fmt: Format, error: Open311Error) -> Response:
    body: Value = [{"code": error.status, "description": error.description}]
    response = respond(fmt, "errors", "error", body, status=error.status)
    if error.retry_after is not None:
        response.headers["Retry-After"] = str(error.retry_after)
    return response


def _fill(parent: ET.Element, fields: Mapping[str, Value]) -> None:
    for name, value in fields.items():
        child = ET.SubElement(parent, name)
        if isinstance(value, Mapping):
            _fill(child, value)
        elif isinstance(value, Sequence) and not isinstance(value, str):
            tag = _MEMBER.get(name, "item")
            for item in value:
                member = ET.SubElement(child, tag)
                if isinstance(item, Mapping):
                    _fill(member, item)
                else:
                    member.text = _text(item)
        else:
            child.text = _text(value)


def _text(value: Value) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return _NOT_XML.sub("", str(value))
