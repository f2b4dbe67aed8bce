"""The one envelope every event travels in, on the embedded log and on Kafka alike."""

from __future__ import annotations

import builtins
from datetime import datetime
from typing import Any, ClassVar, TypeVar
from uuid import UUID, uuid4

from pydantic import BaseModel, ConfigDict, Field


class Payload(BaseModel):
    """Base of every typed event payload. ``TYPE`` and ``VERSION`` name its schema."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    TYPE: ClassVar[str]
    VERSION: ClassVar[int]


P = TypeVar("P", bound=Payload)


class Envelope(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: UUID = Field(description="Unique per event; consumers de-duplicate on it.")
    type: str = Field(description="Event type, e.g. complaint.submitted.")
    schema_version: int = Field(ge=1)
    occurred_at: datetime
    key: str = Field(description="The complaint id: keeps one complaint's events in order.")
    correlation_id: UUID = Field(description="Shared by every event caused by one submission.")
    causation_id: UUID | None = Field(description="The event that caused this one.")
    producer: str
    payload: dict[str, Any]

    @classmethod
    def wrap(
        cls,
        payload: Payload,
        *,
        key: str,
        producer: str,
        occurred_at: datetime,
        correlation_id: UUID | None = None,
        causation: Envelope | None = None,
    ) -> Envelope:
        """Wrap a payload; an event caused by another inherits its correlation id."""
        event_id = uuid4()
        if causation is not None:
            correlation = causation.correlation_id
        else:
            correlation = correlation_id or event_id
        return cls(
            id=event_id,
            type=payload.TYPE,
            schema_version=payload.VERSION,
            occurred_at=occurred_at,
            key=key,
            correlation_id=correlation,
            causation_id=causation.id if causation else None,
            producer=producer,
            payload=payload.model_dump(mode="json"),
        )

    def parse(self, model: builtins.type[P]) -> P:
        if self.type != model.TYPE:
            raise TypeError(f"event {self.id} is {self.type}, not {model.TYPE}")
        return model.model_validate(self.payload)
