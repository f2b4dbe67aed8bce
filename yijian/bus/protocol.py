"""What a transport must do. The embedded SQL log implements it; so will Kafka.

Delivery is at-least-once: a consumer commits a record's offset only after its own database
transaction committed, so a crash in between re-delivers it, and the consumer's processed-event
table turns the second delivery into a no-op.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from yijian.contracts import Envelope


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
    async def publish(self, envelopes: Sequence[tuple[str, Envelope]]) -> None:
        """Append (topic, envelope) pairs durably, in order per key, before returning."""
        ...

    def subscribe(self, group: str, topics: Sequence[str]) -> Subscription: ...

    async def close(self) -> None: ...
