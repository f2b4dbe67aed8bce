"""Where a message goes: the development log, or a signed webhook to a real gateway.

A channel either delivers or raises; retries, backoff and dead-lettering are the delivery
loop's job, so a channel stays a thin adapter.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Protocol

import httpx
import structlog

from yijian.clock import Clock

log = structlog.get_logger(__name__)

LOG = "log"
WEBHOOK = "webhook"

TIMESTAMP_HEADER = "X-Yijian-Timestamp"
SIGNATURE_HEADER = "X-Yijian-Signature"


@dataclass(frozen=True)
class OutboundMessage:
    recipient_key: str
    template: str
    text: str
    complaint_id: str
    tracking_no: str
    event_id: str

    @property
    def message_id(self) -> str:
        """The same for every attempt at one delivery: receivers de-duplicate on it."""
        return f"{self.event_id}/{self.recipient_key}"


class Channel(Protocol):
    async def send(self, message: OutboundMessage) -> None:
        """Deliver the message or raise; returning means the receiver took it."""
        ...


class DeliveryFailed(Exception):
    """The receiver did not take the message; the reason is safe to store and show."""


class LogChannel:
    """Development channel: messages hold no personal data, so logging them in full is safe."""

    async def send(self, message: OutboundMessage) -> None:
        log.info(
            "notification",
            recipient=message.recipient_key,
            template=message.template,
            text=message.text,
            tracking_no=message.tracking_no,
        )


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>`` over ``{timestamp}.{body}``.

    The timestamp is inside the MAC so a captured request cannot be replayed later with a
    fresh header; receivers also reject timestamps far from their own clock and ids they
    have seen (``services.notify.webhook_receiver``).
    """
    digest = hmac.new(secret, timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return f"sha256={digest.hexdigest()}"


def verify(secret: bytes, timestamp: str, body: bytes, signature: str) -> bool:
    """What a receiver runs; constant-time so the signature cannot be guessed byte by byte."""
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


class WebhookChannel:
    """POSTs each message as JSON to one URL, signed with a shared secret."""

    def __init__(
        self,
        *,
        url: str,
        secret: bytes,
        clock: Clock,
        timeout: float = 10.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        if not secret:
            # An unsigned webhook would let anyone who finds the URL forge notices.
            raise ValueError("a webhook needs a signing secret")
        self._url = url
        self._secret = secret
        self._clock = clock
        self._owns_client = client is None
        # An explicit timeout: a hung receiver must fail the attempt, not stall every tick.
        self._client = client or httpx.AsyncClient(timeout=httpx.Timeout(timeout))

    async def send(self, message: OutboundMessage) -> None:
        body = json.dumps(
            {
                "id": message.message_id,
                "recipient": message.recipient_key,
                "template": message.template,
                "text": message.text,
                "complaint_id": message.complaint_id,
                "tracking_no": message.tracking_no,
                "event_id": message.event_id,
            },
            ensure_ascii=False,
            separators=(",", ":"),
        ).encode("utf-8")
        timestamp = str(int(self._clock.now().timestamp()))
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(self._secret, timestamp, body),
        }
        try:
            response = await self._client.post(self._url, content=body, headers=headers)
        except httpx.HTTPError as error:
            # Name the error class only: transport messages can carry the URL, and a URL
            # may hold a token that must not end up in the delivery log.
            raise DeliveryFailed(f"webhook unreachable: {type(error).__name__}") from error
        if not response.is_success:
            raise DeliveryFailed(f"webhook answered HTTP {response.status_code}")

    async def close(self) -> None:
        if self._owns_client:
            await self._client.aclose()
