"""Notify's channels: what a webhook receiver gets and how failures surface."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime

import httpx
import pytest
from structlog.testing import capture_logs

from services.notify.channels import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    DeliveryFailed,
    LogChannel,
    OutboundMessage,
    WebhookChannel,
    sign,
    verify,
)
from yijian.clock import FakeClock

SECRET = b"test-secret"
URL = "https://gateway.example/hook?token=hidden"
MESSAGE = OutboundMessage(
    recipient_key="duty:620922100001",
    template="new_assignment",
    text="【新诉求待签收】诉求GZ260302-7K3Q9M已交解放路社区（村(社区)）办理，请及时签收。",
    complaint_id="c0ffee",
    tracking_no="GZ260302-7K3Q9M",
    event_id="8d3b2c4e-0000-4000-8000-000000000001",
)


def channel_with(handler: httpx.MockTransport, clock: FakeClock | None = None) -> WebhookChannel:
    return WebhookChannel(
        url=URL,
        secret=SECRET,
        clock=clock or FakeClock(),
        client=httpx.AsyncClient(transport=handler),
    )


async def test_webhook_posts_signed_json() -> None:
    seen: list[httpx.Request] = []

    def receive(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    clock = FakeClock(datetime(2026, 3, 2, 6, 30, tzinfo=UTC))
    await channel_with(httpx.MockTransport(receive), clock).send(MESSAGE)

    [request] = seen
    assert request.method == "POST"
    assert str(request.url) == URL
    timestamp = request.headers[TIMESTAMP_HEADER]
    assert timestamp == str(int(clock.now().timestamp()))
    assert verify(SECRET, timestamp, request.content, request.headers[SIGNATURE_HEADER])
    assert json.loads(request.content) == {
        "id": f"{MESSAGE.event_id}/{MESSAGE.recipient_key}",
        "recipient": MESSAGE.recipient_key,
        "template": MESSAGE.template,
        "text": MESSAGE.text,
        "complaint_id": MESSAGE.complaint_id,
        "tracking_no": MESSAGE.tracking_no,
        "event_id": MESSAGE.event_id,
    }


def test_signature_binds_body_timestamp_and_secret() -> None:
    body = b'{"a":1}'
    signature = sign(SECRET, "1772433000", body)
    # Written out from the documented scheme, so a receiver following the docs agrees.
    expected = hmac.new(SECRET, b"1772433000." + body, hashlib.sha256).hexdigest()
    assert signature == f"sha256={expected}"
    assert verify(SECRET, "1772433000", body, signature)
    assert not verify(SECRET, "1772433001", body, signature)
    assert not verify(SECRET, "1772433000", b'{"a":2}', signature)
    assert not verify(b"other-secret", "1772433000", body, signature)


@pytest.mark.parametrize("status", [301, 400, 500, 503])
async def test_webhook_raises_on_any_non_2xx(status: int) -> None:
    channel = channel_with(httpx.MockTransport(lambda _request: httpx.Response(status)))
    with pytest.raises(DeliveryFailed, match=f"HTTP {status}"):
        await channel.send(MESSAGE)


async def test_webhook_transport_error_raises_without_leaking_the_url() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"cannot reach {request.url}", request=request)

    with pytest.raises(DeliveryFailed) as failure:
        await channel_with(httpx.MockTransport(refuse)).send(MESSAGE)
    assert "token" not in str(failure.value)
    assert "ConnectError" in str(failure.value)


def test_webhook_refuses_to_run_unsigned() -> None:
    with pytest.raises(ValueError, match="secret"):
        WebhookChannel(url=URL, secret=b"", clock=FakeClock())


async def test_log_channel_logs_recipient_template_and_text() -> None:
    with capture_logs() as logs:
        await LogChannel().send(MESSAGE)
    [entry] = logs
    assert entry["recipient"] == MESSAGE.recipient_key
    assert entry["template"] == MESSAGE.template
    assert entry["text"] == MESSAGE.text
