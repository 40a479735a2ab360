"""Plain data types shared by every layer: chunks, responses, usage, messages, configs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Role = Literal["system", "user", "assistant"]

#: Normalized finish reasons; the provider's raw value is kept in metadata["raw_finish_reason"].
FINISH_REASONS = ("stop", "length", "content_filter", "tool_calls", "error", "cancelled", "other")


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts of one request, normalized across providers."""

    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0

    @classmethod
    def of(cls, input_tokens: int | None, output_tokens: int | None) -> Usage:
        i = int(input_tokens or 0)
        o = int(output_tokens or 0)
        return cls(i, o, i + o)

    def as_dict(self) -> dict[str, int]:
        """The counts as JSON-ready fields (chain results, the service's answers)."""
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "total_tokens": self.total_tokens,
        }


@dataclass(frozen=True, slots=True)
class Message:
    """One turn of a conversation."""

    role: Role
    content: str

    def as_dict(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


@dataclass(slots=True)
class StreamChunk:
    """A piece of a streamed answer. The last chunk carries finish_reason and usage."""

    content: str
    finish_reason: str | None = None
    model: str | None = None
    usage: Usage | None = None
    metadata: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class StreamConfig:
    """Bounds on one stream.

    stream_timeout: seconds the whole stream may take; chunk_timeout: seconds of silence
    allowed between two chunks; max_chunks: stop after this many content chunks;
    buffer_size: how many decoded chunks may wait for a slow consumer.
    """

    stream_timeout: float | None = 30.0
    chunk_timeout: float | None = 5.0
    max_chunks: int | None = None
    buffer_size: int = 100

    def __post_init__(self) -> None:
        for name in ("stream_timeout", "chunk_timeout"):
            v = getattr(self, name)
            if v is not None and not v > 0:  # also refuses NaN
                raise ValueError(f"StreamConfig.{name} must be positive or None, got {v!r}")
        if self.max_chunks is not None and self.max_chunks < 1:
            raise ValueError(f"StreamConfig.max_chunks must be >= 1 or None, got {self.max_chunks}")
        if self.buffer_size < 1:
            raise ValueError(f"StreamConfig.buffer_size must be >= 1, got {self.buffer_size}")


@dataclass(slots=True)
class LLMResponse:
    """A whole answer, from agenerate/achat or assembled from a stream."""

    content: str
    model: str
    provider: str = ""
    finish_reason: str | None = None
    usage: Usage = field(default_factory=Usage)
    raw_finish_reason: str | None = None
    latency: float | None = None
    time_to_first_token: float | None = None
    request_id: str | None = None
    retries: int = 0
    metadata: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.content

    def __repr__(self) -> str:
        text = self.content if len(self.content) <= 60 else self.content[:57] + "..."
        where = f"{self.provider}:{self.model}" if self.provider else self.model
        return (
            f"LLMResponse({where}, finish_reason={self.finish_reason!r}, "
            f"tokens={self.usage.input_tokens}+{self.usage.output_tokens}, content={text!r})"
        )

    def _repr_markdown_(self) -> str:
        return self.content
