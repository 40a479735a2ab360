"""One metrics record per request, handed to an optional callback, to every process-wide
observer (the call log subscribes one: n3_notebook.log) and to logging.

The record also carries what was asked and answered (`messages`, `system`, `answer_parts`),
so an observer that keeps a history needs no second channel; emit() itself never reads them."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from .types import Message

logger = logging.getLogger("n3_notebook")

OUTCOMES = ("ok", "error", "cancelled", "timeout")


@dataclass(slots=True)
class RequestMetrics:
    """What one request did: timings in seconds, counts, and how it ended.

    queue_wait: seconds spent waiting for a concurrency slot before the request was sent
    (counted by no timeout); time_to_first_token: from sending the request to the first
    text; duration: the whole call, queue wait included."""

    provider: str
    model: str
    stream: bool
    started_at: float
    time_to_first_token: float | None = None
    duration: float | None = None
    chunks: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    retries: int = 0
    outcome: str = "ok"
    error_type: str | None = None
    status_code: int | None = None
    request_id: str | None = None
    queue_wait: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)
    #: the conversation sent and the separate system prompt (None when not known)
    messages: Sequence[Message] | None = None
    system: str | None = None
    #: the answer's text as it reached the caller, piece by piece
    answer_parts: list[str] = field(default_factory=list)
    #: normalized finish reason of the answer (None if it never finished)
    finish_reason: str | None = None
    #: the error's message (already free of keys: errors redact themselves)
    error_message: str | None = None

    @property
    def answer(self) -> str:
        return "".join(self.answer_parts)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


MetricsCallback = Callable[[RequestMetrics], None]

_observers: tuple[MetricsCallback, ...] = ()


def add_observer(observer: MetricsCallback) -> None:
    """Hand every request's record to `observer` too, process-wide (idempotent). It runs on
    the request's task when the request ends: it must be quick and must not block."""
    global _observers
    if observer not in _observers:
        _observers = (*_observers, observer)


def remove_observer(observer: MetricsCallback) -> None:
    global _observers
    _observers = tuple(o for o in _observers if o != observer)


def emit(record: RequestMetrics, callback: MetricsCallback | None) -> None:
    """Log the end of a request and hand its record to the callback (errors in it are logged)."""
    level = logging.INFO if record.outcome == "ok" else logging.WARNING
    if record.outcome == "cancelled":
        level = logging.INFO
    logger.log(
        level,
        "%s %s %s: %s in %.3fs, %d chunks, %d+%d tokens, %d retries%s",
        record.provider,
        record.model,
        "stream" if record.stream else "request",
        record.outcome,
        record.duration or 0.0,
        record.chunks,
        record.input_tokens,
        record.output_tokens,
        record.retries,
        f" ({record.error_type})" if record.error_type else "",
    )
    for observer in _observers:
        try:
            observer(record)
        except Exception:  # a broken observer must not break the request
            logger.exception("metrics observer failed")
    if callback is not None:
        try:
            callback(record)
        except Exception:  # a broken observer must not break the request
            logger.exception("metrics callback failed")
