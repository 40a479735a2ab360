"""Plain data types shared by every layer: chunks, responses, usage, messages, configs."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from .images import Image

Role = Literal["system", "user", "assistant", "tool"]
ROLES = ("system", "user", "assistant", "tool")
#: One part of a message's content: text or an image.
Part = str | Image

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
class ToolCall:
    """A function call the model asked for. `arguments` is the parsed JSON object;
    `metadata` keeps provider extras that must go back with it (Gemini's thoughtSignature)."""

    id: str
    name: str
    arguments: dict[str, Any]
    metadata: dict[str, Any] | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Message:
    """One turn of a conversation.

    `content` is a str or a list of parts (str and Image). An assistant turn may carry the
    `tool_calls` it made; a "tool" turn answers one call (`tool_call_id`, `name`) and
    `is_error` marks a result that is an error report. `metadata` holds provider data
    that must be sent back verbatim (signed thinking blocks)."""

    role: Role
    content: str | Sequence[Part] = ""
    tool_calls: Sequence[ToolCall] = ()
    tool_call_id: str | None = None
    name: str | None = None
    is_error: bool = False
    metadata: Mapping[str, Any] | None = field(default=None, compare=False)

    @property
    def parts(self) -> list[Part]:
        """The content as a list of parts (a str content is one text part)."""
        if isinstance(self.content, str):
            return [self.content] if self.content else []
        return list(self.content)

    @property
    def text(self) -> str:
        """The text parts joined by newlines (images left out)."""
        if isinstance(self.content, str):
            return self.content
        return "\n".join(p for p in self.content if isinstance(p, str))

    @property
    def images(self) -> list[Image]:
        return [p for p in self.parts if isinstance(p, Image)]

    def as_dict(self) -> dict[str, str]:
        """The plain {"role", "content"} form (text only)."""
        return {"role": self.role, "content": self.text}

    @classmethod
    def coerce(cls, value: Message | Mapping[str, Any]) -> Message:
        """A Message from a Message or a {"role", "content", ...} dict; clear errors."""
        if isinstance(value, Message):
            msg = value
        elif isinstance(value, Mapping):
            calls = [
                ToolCall(str(c.get("id") or ""), str(c["name"]), dict(c.get("arguments") or {}))
                if isinstance(c, Mapping) and "name" in c
                else c
                for c in value.get("tool_calls") or ()
            ]
            content = value.get("content")
            msg = cls(
                value.get("role"),  # type: ignore[arg-type]
                "" if content is None else content,
                tuple(calls),
                value.get("tool_call_id"),
                value.get("name"),
                bool(value.get("is_error", False)),
            )
        else:
            raise ValueError(
                f"a message must be a Message or a dict with role and content, got "
                f"{type(value).__name__}"
            )
        if msg.role not in ROLES:
            raise ValueError(
                f"message role must be system, user, assistant or tool, got {msg.role!r}"
            )
        content = msg.content
        if not isinstance(content, str):
            if not isinstance(content, Sequence) or not all(
                isinstance(p, str | Image) for p in content
            ):
                raise ValueError(
                    "message content must be a string or a list of parts (str and "
                    "n3_notebook.Image)"
                )
            if msg.role != "user" and any(isinstance(p, Image) for p in content):
                raise ValueError(f"only user messages may carry images, not {msg.role!r} ones")
        if not all(isinstance(c, ToolCall) for c in msg.tool_calls):
            raise ValueError("Message.tool_calls must hold n3_notebook.ToolCall objects")
        if msg.role == "tool" and not msg.tool_call_id:
            raise ValueError("a tool message needs the tool_call_id of the call it answers")
        return msg


@dataclass(slots=True)
class StreamChunk:
    """A piece of a streamed answer. The last chunk carries finish_reason and usage."""

    content: str
    finish_reason: str | None = None
    model: str | None = None
    usage: Usage | None = None
    metadata: dict[str, Any] | None = None
    #: On the final chunk: the tool calls of the answer, in stream order.
    tool_calls: list[ToolCall] | None = None
    #: A piece of the model's thinking (content is then ""); None on answer chunks.
    reasoning: str | None = None


#: The one set of stream limits shared by the library, the magics, maps and the service.
#: Chosen for real models: an answer of 4,000 tokens at 60 tokens/s takes 67 s, so no
#: whole-stream limit; a reasoning model (o-series, gpt-5, Gemini thinking, Claude with a
#: thinking budget) may send no text for minutes while it thinks, so its wait for the first
#: text is long; once text flows, two minutes without a single byte (a ping, an SSE
#: comment or a reasoning delta all count) means the stream is dead.
DEFAULT_STREAM_TIMEOUT: float | None = None
DEFAULT_CHUNK_TIMEOUT = 120.0
DEFAULT_FIRST_TOKEN_TIMEOUT = 120.0
DEFAULT_REASONING_FIRST_TOKEN_TIMEOUT = 600.0

#: Environment variables StreamConfig.from_env() reads (the service's settings).
STREAM_ENV = {
    "stream_timeout": "N3_STREAM_TIMEOUT",
    "chunk_timeout": "N3_CHUNK_TIMEOUT",
    "first_token_timeout": "N3_FIRST_TOKEN_TIMEOUT",  # nosec B105  # a variable name, not a secret
    "reasoning_first_token_timeout": "N3_REASONING_FIRST_TOKEN_TIMEOUT",  # nosec B105  # same
}
_LIMITS = tuple(STREAM_ENV)


@dataclass(frozen=True, slots=True)
class StreamConfig:
    """Bounds on one stream (seconds; None: no limit). The clocks start when the request
    is sent: time spent waiting for a concurrency slot or a rate limit never counts.

    stream_timeout: the whole stream; chunk_timeout: silence once the answer has started
    (any bytes count as life); max_chunks: stop after this many content chunks; buffer_size:
    how many decoded chunks may wait for a slow consumer; first_token_timeout: from
    sending the request to the first chunk of the answer (text or thinking);
    reasoning_first_token_timeout: the same when the request asks for reasoning (or names
    a reasoning model), whose thinking may be hidden.

    The first four are the seed's fields, in the seed's order: StreamConfig(30, 5) still
    means 30 s for the whole stream and 5 s of silence between chunks.
    """

    stream_timeout: float | None = DEFAULT_STREAM_TIMEOUT
    chunk_timeout: float | None = DEFAULT_CHUNK_TIMEOUT
    max_chunks: int | None = None
    buffer_size: int = 100
    first_token_timeout: float | None = DEFAULT_FIRST_TOKEN_TIMEOUT
    reasoning_first_token_timeout: float | None = DEFAULT_REASONING_FIRST_TOKEN_TIMEOUT

    def __post_init__(self) -> None:
        for name in _LIMITS:
            v = getattr(self, name)
            if v is not None and not v > 0:  # also refuses NaN
                raise ValueError(f"StreamConfig.{name} must be positive or None, got {v!r}")
        if self.max_chunks is not None and self.max_chunks < 1:
            raise ValueError(f"StreamConfig.max_chunks must be >= 1 or None, got {self.max_chunks}")
        if self.buffer_size < 1:
            raise ValueError(f"StreamConfig.buffer_size must be >= 1, got {self.buffer_size}")

    def first_token_limit(self, reasoning: bool) -> tuple[str, float | None]:
        """(name, seconds) of the limit on the wait for the first text."""
        if reasoning:
            return "reasoning_first_token_timeout", self.reasoning_first_token_timeout
        return "first_token_timeout", self.first_token_timeout

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> StreamConfig:
        """The defaults, overridden by N3_STREAM_TIMEOUT, N3_CHUNK_TIMEOUT,
        N3_FIRST_TOKEN_TIMEOUT and N3_REASONING_FIRST_TOKEN_TIMEOUT (seconds; 0 or "none"
        for no limit). The service reads its limits this way."""
        env = os.environ if environ is None else environ
        values: dict[str, float | None] = {}
        for field_name, var in STREAM_ENV.items():
            raw = env.get(var, "").strip()
            if not raw:
                continue
            if raw.lower() in ("0", "none", "off"):
                values[field_name] = None
                continue
            try:
                values[field_name] = float(raw)
            except ValueError:
                raise ValueError(
                    f"{var}={raw!r} is not a number of seconds; set it to e.g. 300, or to 0 "
                    "for no limit."
                ) from None
        return cls(**values)  # type: ignore[arg-type]


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
    #: The calls the model asked for (finish_reason "tool_calls"), in order.
    tool_calls: list[ToolCall] = field(default_factory=list)
    #: With schema=: the validated object (a pydantic model instance, or the JSON value).
    parsed: Any = None
    #: The model's thinking, when it was shown (reasoning=...), else None.
    reasoning: str | None = None
    #: With run_tools=True: the whole exchange, from the first message to the answer.
    messages: list[Message] = field(default_factory=list)

    def __str__(self) -> str:
        return self.content

    def __repr__(self) -> str:
        text = self.content if len(self.content) <= 60 else self.content[:57] + "..."
        where = f"{self.provider}:{self.model}" if self.provider else self.model
        calls = f", tool_calls={[c.name for c in self.tool_calls]}" if self.tool_calls else ""
        return (
            f"LLMResponse({where}, finish_reason={self.finish_reason!r}, "
            f"tokens={self.usage.input_tokens}+{self.usage.output_tokens}, content={text!r}"
            f"{calls})"
        )

    def _repr_markdown_(self) -> str:
        return self.content
