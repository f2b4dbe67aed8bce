"""What the published OpenAPI says about error bodies, made true.

Every refusal in yijian is ``{"detail": ...}``: FastAPI's own validation errors carry a
list of problems, while the services' refusals (unknown category, not your jurisdiction,
too many requests) carry one sentence a person can read. FastAPI documents only the list,
so a client generated from the schema — or a schema checker — would reject our reasons.
The schema is widened once, when it is first built, to say both.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

_VALIDATION_ERROR = "HTTPValidationError"


def document_error_bodies(app: FastAPI) -> None:
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            components = schema.get("components", {}).get("schemas", {})
            error = components.get(_VALIDATION_ERROR)
            if error is not None:
                listed = error["properties"]["detail"]
                error["properties"]["detail"] = {
                    "title": "Detail",
                    "anyOf": [
                        {"type": "string", "description": "why the request was refused"},
                        {key: value for key, value in listed.items() if key != "title"},
                    ],
                }
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
