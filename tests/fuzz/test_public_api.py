"""Schemathesis against the public OpenAPI: whatever a client sends, never a 5xx, and every
documented answer matches its schema.

The system runs as ``make run`` runs it, over real HTTP. Requests carry a county operator's
token, so the staff endpoints are explored past their sign-in check; the internal,
service-to-service routes are left out (they are not public and answer only to the service
token).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

from services.embedded import build_system, create_app
from tests.conftest import make_settings
from tests.live import LiveServer, serve

COUNTY = "620922"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with serve(tmp_path_factory.mktemp("fuzz")) as server:
        yield server


def _public_schema() -> schemathesis.BaseSchema:
    """The schema as the app publishes it; building the app touches no database."""
    with tempfile.TemporaryDirectory() as scratch:
        app = create_app(build_system(make_settings(Path(scratch))))
        document = app.openapi()
    return schemathesis.openapi.from_dict(document).exclude(path_regex=r"^/internal/")


api = _public_schema()


@api.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_no_server_error_and_answers_match_the_schema(
    case: schemathesis.Case[Any], live: LiveServer
) -> None:
    token = live.staff_token(COUNTY, "fuzz")
    case.call_and_validate(
        base_url=live.url,
        headers={"Authorization": f"Bearer {token}"},
        checks=[not_a_server_error, response_schema_conformance, content_type_conformance],
    )
