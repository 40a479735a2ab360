"""One metrics record per request, handed to an optional callback, plus logging."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

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

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


MetricsCallback = Callable[[RequestMetrics], None]


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
    if callback is not None:
        try:
            callback(record)
        except Exception:  # a broken observer must not break the request
            logger.exception("metrics callback failed")
