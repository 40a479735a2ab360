"""What a provider adapter hands back to the shared machinery (core/base.py): a parsed
whole answer, and a mapper from decoded stream items to chunks."""

from __future__ import annotations

from typing import Any, Protocol

from .types import StreamChunk, ToolCall, Usage

__all__ = ["ParsedResponse", "StreamMapper"]


class StreamMapper(Protocol):
    """Turns decoded stream items (SSEEvent or NDJSON record bytes) into chunks.

    `done` becomes True when the protocol says the answer is complete ([DONE],
    message_stop, done: true). end() is called at end of input and returns the final chunk
    (finish reason and usage) or raises StreamProtocolError if the stream was cut short."""

    done: bool

    def feed(self, item: Any) -> list[StreamChunk]: ...

    def end(self) -> list[StreamChunk]: ...


class ParsedResponse(Protocol):
    content: str
    raw_finish_reason: str | None
    usage: Usage
    model: str | None
    metadata: dict[str, Any]
    tool_calls: list[ToolCall]
    reasoning: str | None
