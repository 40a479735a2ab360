"""Small helpers shared by the provider adapters."""

from __future__ import annotations

import json
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
from ..core.types import StreamChunk, ToolCall, Usage


@dataclass(slots=True)
class Parsed:
    """A whole (non-streamed) answer as an adapter read it."""

    content: str
    raw_finish_reason: str | None
    usage: Usage
    model: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    tool_calls: list[ToolCall] = field(default_factory=list)
    reasoning: str | None = None


def final_chunk(
    finish: str | None,
    usage: Usage | None,
    model: str | None,
    tool_calls: ToolCallParts | list[ToolCall] | None = None,
    **extra: Any,
) -> StreamChunk:
    """The last chunk of a stream: no text, the raw finish reason, usage, tool calls."""
    meta: dict[str, Any] = {"raw_finish_reason": finish}
    meta.update({k: v for k, v in extra.items() if v is not None})
    calls = tool_calls.result() if isinstance(tool_calls, ToolCallParts) else tool_calls
    return StreamChunk("", finish, model, usage, meta, calls or None)


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
        cls = error_class_for_status(status)
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


class ToolCallParts:
    """Tool calls assembled from stream pieces, keyed by the provider's index.

    The first non-empty id and name of a call win (some servers repeat the name, or send
    the id "0", in later deltas: never concatenated); argument pieces are concatenated
    exactly as sent; a call that got no argument text takes `whole` (an object given
    complete) or {}. Calls come out in the order their first piece arrived."""

    __slots__ = ("calls", "provider")

    def __init__(self, provider: str) -> None:
        self.provider = provider
        self.calls: dict[Any, _PendingCall] = {}

    def __bool__(self) -> bool:
        return bool(self.calls)

    def add(
        self,
        key: Any,
        *,
        id: Any = None,
        name: Any = None,
        piece: Any = None,
        whole: Any = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        call = self.calls.get(key)
        if call is None:
            call = self.calls[key] = _PendingCall()
        if id and not call.id:
            call.id = str(id)
        if name and not call.name:
            call.name = str(name)
        if piece:
            if not isinstance(piece, str):
                if isinstance(piece, dict) and not call.pieces:
                    call.whole = piece  # an object where a string belongs (Ollama-style)
                    return
                raise StreamProtocolError(
                    f"tool call arguments of an unexpected type ({type(piece).__name__})",
                    provider=self.provider,
                )
            call.pieces.append(piece)
        if whole is not None:
            call.whole = whole
        if metadata:
            call.metadata = {**(call.metadata or {}), **metadata}

    def result(self) -> list[ToolCall]:
        out: list[ToolCall] = []
        used: set[str] = set()
        for n, call in enumerate(self.calls.values()):
            if not call.name:
                raise StreamProtocolError("a tool call came without a name", provider=self.provider)
            call_id = call.id or f"call_{n}"
            if call_id in used:  # e.g. every call sent with the id "0"
                call_id = f"{call_id}_{n}"
            used.add(call_id)
            out.append(ToolCall(call_id, call.name, self._arguments(call), call.metadata))
        return out

    def _arguments(self, call: _PendingCall) -> dict[str, Any]:
        text = "".join(call.pieces)
        if not text.strip():
            value = call.whole if call.whole is not None else {}
        else:
            try:
                value = json.loads(text)
            except ValueError as exc:
                snippet = text if len(text) <= 200 else text[:200] + "…"
                raise StreamProtocolError(
                    f"the arguments of tool call {call.name!r} are not valid JSON: {snippet!r}",
                    provider=self.provider,
                ) from exc
        if not isinstance(value, dict):
            raise StreamProtocolError(
                f"the arguments of tool call {call.name!r} are not a JSON object",
                provider=self.provider,
            )
        return value


@dataclass(slots=True)
class _PendingCall:
    id: str = ""
    name: str = ""
    pieces: list[str] = field(default_factory=list)
    whole: Any = None
    metadata: dict[str, Any] | None = None


def reasoning_chunk(text: str, model: str | None) -> StreamChunk:
    """A piece of the model's thinking: no answer text, never the final chunk."""
    if text.__class__ is not str:
        raise StreamProtocolError(
            f"stream thinking of an unexpected type ({type(text).__name__})", provider=None
        )
    return StreamChunk("", None, model, reasoning=text)
