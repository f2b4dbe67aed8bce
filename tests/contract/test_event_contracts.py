"""The event contracts: what other systems may rely on, and what must never travel."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from yijian.contracts.events import EVENT_TYPES
from yijian.contracts.publish import SCHEMA_DIR, render, schema_documents

SAMPLES = Path(__file__).parent / "samples"
# Samples are events as producers of each version emitted them. They are frozen: a change
# that stops one from parsing, or from validating, breaks consumers of that version.
PERSONAL = {"name", "phone", "openid", "address", "contact", "description", "text", "note"}


def _property_names(schema: Any) -> set[str]:
    names: set[str] = set()
    if isinstance(schema, dict):
        for key, value in schema.items():
            if key == "properties" and isinstance(value, dict):
                names.update(value)
            names |= _property_names(value)
    elif isinstance(schema, list):
        for item in schema:
            names |= _property_names(item)
    return names


def test_committed_schemas_match_the_code() -> None:
    documents = schema_documents()
    committed = {path.name for path in SCHEMA_DIR.glob("*.json")}
    assert committed == set(documents), "run `make schemas` and commit the result"
    for name, schema in documents.items():
        on_disk = (SCHEMA_DIR / name).read_text(encoding="utf-8")
        assert on_disk == render(schema), f"{name} differs from the code: run `make schemas`"


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_every_event_type_has_a_frozen_sample_that_still_parses(event_type: str) -> None:
    model = EVENT_TYPES[event_type]
    sample_path = SAMPLES / f"{event_type}.v{model.VERSION}.json"
    assert sample_path.exists(), f"add a sample for {event_type} v{model.VERSION}"
    sample = json.loads(sample_path.read_text(encoding="utf-8"))
    model.model_validate(sample)
    schema = json.loads((SCHEMA_DIR / f"{event_type}.v{model.VERSION}.json").read_text())
    jsonschema.validate(sample, schema)


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_no_event_has_a_field_for_personal_data(event_type: str) -> None:
    schema = EVENT_TYPES[event_type].model_json_schema()
    # An org's name is public (新华村); the org carries nothing else.
    org = schema.get("$defs", {}).pop("Org", None)
    if org is not None:
        assert set(org["properties"]) == {"code", "name", "level"}
    leaked = _property_names(schema) & PERSONAL
    assert not leaked, f"{event_type} has personal-data fields {leaked}"


def test_a_sample_with_a_removed_field_no_longer_validates() -> None:
    """The check above can fail: dropping a required field is caught."""
    model = EVENT_TYPES["complaint.assigned"]
    sample = json.loads((SAMPLES / "complaint.assigned.v1.json").read_text(encoding="utf-8"))
    del sample["clock"]
    schema = json.loads((SCHEMA_DIR / "complaint.assigned.v1.json").read_text())
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(sample, schema)
    with pytest.raises(ValueError, match="clock"):
        model.model_validate(sample)
