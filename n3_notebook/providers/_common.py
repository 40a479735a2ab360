"""Small helpers shared by the provider adapters."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..core.errors import (
    LLMError,
    OverloadedError,
    RateLimitError,
    ServerError,
    StreamProtocolError,
    error_class_for_status,
)
from ..core.types import StreamChunk, Usage


@dataclass(slots=True)
class Parsed:
    """A whole (non-streamed) answer as an adapter read it."""

    content: str
    raw_finish_reason: str | None
    usage: Usage
    model: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


def final_chunk(
    finish: str | None,
    usage: Usage | None,
    model: str | None,
    reasoning: list[str] | None = None,
    **extra: Any,
) -> StreamChunk:
    """The last chunk of a stream: no text, the raw finish reason and usage."""
    meta: dict[str, Any] = {"raw_finish_reason": finish}
    if reasoning:
        meta["reasoning"] = "".join(reasoning)
    meta.update({k: v for k, v in extra.items() if v is not None})
    return StreamChunk("", finish, model, usage, meta)


# In-band error kinds that are worth a retry, with the HTTP status the same error has
# when it arrives as a status (the stream itself was a 200).
_RETRYABLE_KINDS: dict[str, tuple[type[LLMError], int]] = {
    "overloaded_error": (OverloadedError, 529),
    "overloaded": (OverloadedError, 529),
    "rate_limit_error": (RateLimitError, 429),
    "rate_limit_exceeded": (RateLimitError, 429),
    "resource_exhausted": (RateLimitError, 429),
    "api_error": (ServerError, 500),
    "server_error": (ServerError, 500),
    "internal": (ServerError, 500),
    "unavailable": (ServerError, 503),
}


def inband_error(provider: str, message: str, kind: Any = None, code: Any = None) -> LLMError:
    """An error reported inside a stream, typed by its kind or (integer) code.

    Retryable kinds (overloaded, rate limit, server error) are marked so the base retries
    them when no chunk has reached the caller yet."""
    status = code if isinstance(code, int) and 400 <= code < 600 else None
    if isinstance(code, str) and code.isdigit():
        status = int(code)
    key = str(kind or "").lower()
    if key in _RETRYABLE_KINDS:
        cls, canonical = _RETRYABLE_KINDS[key]
        status = status or canonical
        retryable = True
    elif status is not None:
        cls = error_class_for_status(status)  # type: ignore[assignment]
        retryable = status in (429, 529) or status >= 500
    else:
        cls = StreamProtocolError
        retryable = False
    label = f"{kind}: " if kind and cls is StreamProtocolError else ""
    err = cls(
        f"error in the stream: {label}{message}",
        provider=provider,
        status_code=status,
        provider_message=message,
    )
    err.retryable = retryable
    return err


def truncated(provider: str) -> StreamProtocolError:
    return StreamProtocolError(
        "the stream ended before the answer was complete (no final event)", provider=provider
    )


def put_if(target: dict[str, Any], key: str, value: Any) -> None:
    if value is not None:
        target[key] = value
