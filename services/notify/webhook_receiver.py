"""What a receiver of yijian's webhooks runs: the signature, the timestamp, and replays.

A gateway (the SMS provider's adapter, a county system) imports this, or follows it in its
own language; tests use it as the reference. A request passes when

1. ``X-Yijian-Timestamp`` is within ``tolerance`` of the receiver's clock — a captured
   request cannot be sent again later, because the timestamp is inside the signature;
2. ``X-Yijian-Signature`` is the HMAC-SHA256 of ``{timestamp}.{body}`` under the shared
   secret, compared in constant time;
3. the body's ``id`` has not been accepted before — which stops a replay inside the
   tolerance. Ids are remembered only as long as their timestamp would still pass, so the
   memory stays bounded. yijian retries a delivery with the same id and a fresh timestamp:
   a receiver answers such a ``Replayed`` with 2xx and does not act on it again.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timedelta

from services.notify.channels import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from yijian.clock import Clock

TOLERANCE = timedelta(minutes=5)


class WebhookRejected(Exception):
    """Not from yijian, or too old: answer 401 and ignore it."""


class Replayed(WebhookRejected):
    """Signed and fresh, but this id was accepted already: a replay or a retry."""


class WebhookVerifier:
    def __init__(self, secret: bytes, clock: Clock, tolerance: timedelta = TOLERANCE) -> None:
        if not secret:
            raise ValueError("a webhook receiver needs the shared secret")
        self._secret = secret
        self._clock = clock
        self._tolerance = tolerance
        self._seen: dict[str, datetime] = {}  # id → when it stops needing to be remembered

    def check(self, headers: Mapping[str, str], body: bytes) -> dict[str, object]:
        """The message, when the request passes all three checks; raises otherwise."""
        lowered = {name.lower(): value for name, value in headers.items()}
        stamp = lowered.get(TIMESTAMP_HEADER.lower(), "")
        signature = lowered.get(SIGNATURE_HEADER.lower(), "")
        if not stamp.isdigit():
            raise WebhookRejected(f"missing or malformed {TIMESTAMP_HEADER}")
        now = self._clock.now()
        sent = datetime.fromtimestamp(int(stamp), tz=now.tzinfo)
        if abs(now - sent) > self._tolerance:
            raise WebhookRejected("the timestamp is too far from now: an old or replayed request")
        if not verify(self._secret, stamp, body, signature):
            raise WebhookRejected("the signature does not match the body and timestamp")
        message = json.loads(body.decode("utf-8"))
        if not isinstance(message, dict) or not isinstance(message.get("id"), str):
            raise WebhookRejected("the body carries no message id")
        self._forget_expired(now)
        if message["id"] in self._seen:
            raise Replayed(f"message {message['id']} was accepted already")
        self._seen[message["id"]] = sent + 2 * self._tolerance
        return message

    @property
    def remembered(self) -> int:
        """How many ids are held for replay checks (bounded by the tolerance)."""
        return len(self._seen)

    def _forget_expired(self, now: datetime) -> None:
        for message_id in [key for key, until in self._seen.items() if until < now]:
            del self._seen[message_id]
