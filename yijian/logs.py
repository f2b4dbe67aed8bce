"""One logger for every process: readable in a terminal, JSON in production.

Only ids, codes, types and counts are ever logged; personal data has no field to go in.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from contextvars import ContextVar, Token
from types import TracebackType
from typing import Any, Protocol
from uuid import UUID

import structlog


class _Event(Protocol):
    @property
    def id(self) -> UUID: ...
    @property
    def type(self) -> str: ...
    @property
    def correlation_id(self) -> UUID: ...


_HANDLING: ContextVar[tuple[str, _Event] | None] = ContextVar("yijian_handling", default=None)


class handling:
    """While a consumer handles an event, every line logged carries the consumer, the event's
    type and id, and the complaint's correlation id.

    Only the consumer and the event are noted (one context variable); their fields become text
    when a line is actually logged. Binding four formatted fields with structlog's
    ``bound_contextvars`` for every event cost ~15 µs of a consumer's ~130 µs per event
    (bench/transport.py), for log lines that are almost never written.
    """

    __slots__ = ("_handling", "_token")

    def __init__(self, consumer: str, event: _Event) -> None:
        self._handling = (consumer, event)
        self._token: Token[tuple[str, _Event] | None] | None = None

    def __enter__(self) -> None:
        self._token = _HANDLING.set(self._handling)

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._token is not None:
            _HANDLING.reset(self._token)


def add_handled_event(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """The structlog processor that writes what ``handling`` noted into the line."""
    noted = _HANDLING.get()
    if noted is not None:
        consumer, event = noted
        event_dict.setdefault("consumer", consumer)
        event_dict.setdefault("event_type", event.type)
        event_dict.setdefault("event_id", str(event.id))
        event_dict.setdefault("correlation_id", str(event.correlation_id))
    return event_dict


def configure_logging(fmt: str = "console", level: str = "INFO") -> None:
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            add_handled_event,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
