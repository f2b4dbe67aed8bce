"""Writes the JSON Schema of the envelope and of every event payload into the repository.

Consumers in other languages (the mini-program backend, county systems) read these files;
the contract tests compare them with the code so a change cannot slip through unnoticed.
Run ``make schemas`` after a deliberate, compatible change.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from yijian.contracts.envelope import Envelope
from yijian.contracts.events import EVENT_TYPES

SCHEMA_DIR = Path(__file__).parent / "schemas"


def schema_documents() -> dict[str, dict[str, Any]]:
    """File name → JSON Schema, for the envelope and each payload version."""
    documents: dict[str, dict[str, Any]] = {"envelope.json": Envelope.model_json_schema()}
    for event_type, model in EVENT_TYPES.items():
        schema = model.model_json_schema()
        schema["$id"] = f"urn:yijian:event:{event_type}:v{model.VERSION}"
        schema["x-event-type"] = event_type
        schema["x-schema-version"] = model.VERSION
        documents[f"{event_type}.v{model.VERSION}.json"] = schema
    return documents


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def main() -> None:
    SCHEMA_DIR.mkdir(exist_ok=True)
    for name, schema in schema_documents().items():
        (SCHEMA_DIR / name).write_text(render(schema), encoding="utf-8")
        print(f"wrote {SCHEMA_DIR / name}")


if __name__ == "__main__":
    main()
