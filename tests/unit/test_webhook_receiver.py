"""The receiver's check: a forged, stale or replayed webhook is refused; a fresh one passes."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from services.notify.channels import TIMESTAMP_HEADER, OutboundMessage, WebhookChannel
from services.notify.webhook_receiver import Replayed, WebhookRejected, WebhookVerifier
from yijian.clock import FakeClock

SECRET = b"shared-with-the-gateway"
MESSAGE = OutboundMessage(
    recipient_key="citizen:c0ffee",
    template="citizen_replied",
    text="您的诉求（编号GZ260302-7K3Q9M）已有答复。",
    complaint_id="c0ffee",
    tracking_no="GZ260302-7K3Q9M",
    event_id="8d3b2c4e-0000-4000-8000-000000000001",
)


async def sent_by_yijian(clock: FakeClock, message: OutboundMessage = MESSAGE) -> httpx.Request:
    """The request notify's webhook channel makes, captured instead of sent."""
    seen: list[httpx.Request] = []

    def receive(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    channel = WebhookChannel(
        url="https://gateway.example/hook",
        secret=SECRET,
        clock=clock,
        client=httpx.AsyncClient(transport=httpx.MockTransport(receive)),
    )
    await channel.send(message)
    return seen[0]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 3, 2, 6, 30, tzinfo=UTC))


async def test_a_fresh_signed_message_passes_once(clock: FakeClock) -> None:
    receiver = WebhookVerifier(SECRET, clock)
    request = await sent_by_yijian(clock)
    message = receiver.check(request.headers, request.content)
    assert message["id"] == f"{MESSAGE.event_id}/{MESSAGE.recipient_key}"
    clock.advance(timedelta(seconds=30))
    with pytest.raises(Replayed):
        receiver.check(request.headers, request.content)  # the same request, replayed


async def test_a_retry_of_the_same_delivery_is_recognised(clock: FakeClock) -> None:
    receiver = WebhookVerifier(SECRET, clock)
    first = await sent_by_yijian(clock)
    receiver.check(first.headers, first.content)
    clock.advance(timedelta(minutes=1))
    retry = await sent_by_yijian(clock)  # yijian did not see the answer and sends again
    assert retry.headers[TIMESTAMP_HEADER] != first.headers[TIMESTAMP_HEADER]
    with pytest.raises(Replayed):
        receiver.check(retry.headers, retry.content)
    other = await sent_by_yijian(clock, replace(MESSAGE, recipient_key="duty:620922"))
    receiver.check(other.headers, other.content)


async def test_an_old_request_is_refused_even_when_its_id_is_forgotten(clock: FakeClock) -> None:
    request = await sent_by_yijian(clock)
    clock.advance(timedelta(minutes=5, seconds=1))
    with pytest.raises(WebhookRejected, match="too far from now"):
        WebhookVerifier(SECRET, clock).check(request.headers, request.content)


async def test_forged_or_altered_requests_are_refused(clock: FakeClock) -> None:
    request = await sent_by_yijian(clock)
    receiver = WebhookVerifier(SECRET, clock)
    altered = request.content.replace("已有答复".encode(), "已办结".encode())
    with pytest.raises(WebhookRejected, match="signature"):
        receiver.check(request.headers, altered)
    moved = {**request.headers, TIMESTAMP_HEADER: str(int(clock.now().timestamp()) + 1)}
    with pytest.raises(WebhookRejected, match="signature"):
        receiver.check(moved, request.content)
    with pytest.raises(WebhookRejected, match="signature"):
        WebhookVerifier(b"another-secret", clock).check(request.headers, request.content)
    with pytest.raises(WebhookRejected, match="malformed"):
        receiver.check({}, request.content)
    # None of the refusals used the id up: the genuine request still passes.
    receiver.check(request.headers, request.content)


async def test_ids_are_forgotten_once_their_timestamp_could_no_longer_pass(
    clock: FakeClock,
) -> None:
    receiver = WebhookVerifier(SECRET, clock)
    first = await sent_by_yijian(clock)
    receiver.check(first.headers, first.content)
    clock.advance(timedelta(hours=1))
    later = await sent_by_yijian(clock, replace(MESSAGE, event_id="e2"))
    receiver.check(later.headers, later.content)
    assert receiver.remembered == 1  # the first id was let go
