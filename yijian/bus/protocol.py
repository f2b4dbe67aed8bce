"""What a transport must do. The embedded SQL log implements it; so will Kafka.

Delivery is at-least-once: a consumer commits a record's offset only after its own database
transaction committed, so a crash in between re-delivers it, and the consumer's processed-event
table turns the second delivery into a no-op.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from pydantic import BaseModel

from yijian.contracts import Envelope


class _Label(BaseModel):
    """The three fields a log places an event by; the rest of the text is skipped unbuilt."""

    id: str
    type: str
    key: str


@dataclass(frozen=True, slots=True)
class StoredEnvelope:
    """An envelope as the JSON text an outbox stored, with the fields a log places it by.

    The outbox relay passes this on instead of an ``Envelope``: parsing every row into the
    model and serialising it again, only to send the same bytes, cost it ~12 µs an event. The
    text goes to the log unchanged, so what it holds is byte for byte what the service
    committed; consumers still validate it in full when they read it.
    """

    id: str
    type: str
    key: str
    text: str

    @classmethod
    def from_text(cls, text: str) -> StoredEnvelope:
        label = _Label.model_validate_json(text)
        return cls(id=label.id, type=label.type, key=label.key, text=text)

    @classmethod
    def of(cls, envelope: Envelope | StoredEnvelope) -> StoredEnvelope:
        """What a log appends, from an envelope built in memory or one read back as text."""
        if isinstance(envelope, StoredEnvelope):
            return envelope
        return cls(
            id=str(envelope.id),
            type=envelope.type,
            key=envelope.key,
            text=envelope.model_dump_json(),
        )

    def envelope(self) -> Envelope:
        """The whole envelope, validated: for readers; the relay never needs it."""
        return Envelope.model_validate_json(self.text)


@dataclass(frozen=True)
class Delivery:
    """One record as a consumer group receives it."""

    topic: str
    partition: int
    offset: int
    envelope: Envelope


@dataclass(frozen=True)
class DeadLetter:
    id: int
    group: str
    topic: str
    partition: int
    offset: int
    envelope: Envelope
    error: str
    attempts: int


class Subscription(Protocol):
    async def poll(self, max_records: int, timeout: float) -> list[Delivery]:
        """The next records after the committed position; waits up to ``timeout`` for some."""
        ...

    async def commit(self, deliveries: Sequence[Delivery]) -> None:
        """Mark these records (and everything before them in their partition) consumed."""
        ...

    def rewind(self, delivery: Delivery) -> None:
        """Deliver this record again on the next poll (after a failed attempt)."""
        ...

    async def dead_letter(self, delivery: Delivery, error: str, attempts: int) -> None:
        """Park a record that keeps failing, with the reason, so the partition moves on."""
        ...

    async def close(self) -> None: ...


class DeadLetterStore(Protocol):
    """What an operator needs of a transport: see what was parked, and put it back."""

    async def dead_letters(
        self, group: str | None = None, include_replayed: bool = False
    ) -> list[DeadLetter]: ...

    async def replay_dead_letter(self, dead_letter_id: int) -> bool: ...


@runtime_checkable
class ReportsLag(Protocol):
    """A subscription that can say how far behind its group is (for the lag metric)."""

    async def lag(self) -> int: ...


class EventLog(Protocol):
    async def publish(self, envelopes: Sequence[tuple[str, Envelope | StoredEnvelope]]) -> None:
        """Append (topic, envelope) pairs durably, in order per key, before returning.

        A ``StoredEnvelope``'s text is appended as it is, not serialised again.
        """
        ...

    def subscribe(self, group: str, topics: Sequence[str]) -> Subscription: ...

    async def close(self) -> None: ...
