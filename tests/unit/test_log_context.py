"""A line logged while a consumer handles an event names the consumer, the event and the
complaint's correlation id; lines logged outside that carry none of it."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import structlog

from tests.integration.event_logs import closed
from yijian.contracts import Envelope
from yijian.logs import configure_logging, handling


@pytest.fixture
def json_lines(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    """What the production logger writes, as it writes it (JSON lines on stderr)."""
    written = io.StringIO()
    monkeypatch.setattr(sys, "stderr", written)
    configure_logging("json")
    try:
        yield written
    finally:
        structlog.reset_defaults()


def test_lines_logged_while_handling_an_event_name_it(
    json_lines: io.StringIO,
) -> None:
    now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    cause = Envelope.wrap(closed("a"), key="a", producer="intake", occurred_at=now)
    event = Envelope.wrap(
        closed("a"), key="a", producer="routing", occurred_at=now, causation=cause
    )
    log = structlog.get_logger("test")

    with handling("notify.cases", event):
        log.info("delivered", channel="sms")
        with handling("notify.other", cause):
            log.info("nested")
        log.info("again", consumer="explicit")
    log.info("idle")

    lines = [json.loads(line) for line in json_lines.getvalue().splitlines()]
    assert [line["event"] for line in lines] == ["delivered", "nested", "again", "idle"]
    assert lines[0]["consumer"] == "notify.cases"
    assert lines[0]["event_type"] == "complaint.closed"
    assert lines[0]["event_id"] == str(event.id)
    assert lines[0]["correlation_id"] == str(cause.id)  # the submission's, through causation
    assert lines[0]["channel"] == "sms"
    assert lines[1]["consumer"] == "notify.other"
    assert lines[1]["event_id"] == str(cause.id)
    assert lines[2]["consumer"] == "explicit"  # what the line says for itself wins
    assert lines[2]["event_id"] == str(event.id)  # the outer event again after the inner one
    assert not {"consumer", "event_id", "correlation_id"} & set(lines[3])
