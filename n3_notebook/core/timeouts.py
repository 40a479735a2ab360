"""The clocks of one stream: which limit bounds each wait, which one fired, and an error
that says so (which limit, after how long, what had arrived, how to raise it).

Phases (StreamConfig has the numbers and why): the clocks start when the request is sent,
after any wait for a concurrency slot. Until the first chunk of the answer (text or
thinking), the wait is bounded by first_token_timeout, or reasoning_first_token_timeout
when the request asks for reasoning (a model may think for minutes and show none of it);
after it, by chunk_timeout of silence, where any bytes (pings, SSE comments, reasoning
deltas) count as life. stream_timeout, if set, bounds everything."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import LLMTimeoutError
from .types import STREAM_ENV, StreamConfig

__all__ = ["StreamClock", "timeout_hint", "wants_reasoning"]

#: Request fields that ask for reasoning (OpenAI, Anthropic, Gemini, Ollama, compatibles).
_REASONING_FIELDS = ("reasoning_effort", "reasoning", "thinking", "think", "thinking_config")
_OFF = (None, False, 0, "none", "off", "disabled", "")
#: Models that reason before answering whether or not the request says so.
_REASONING_MODEL = re.compile(
    r"(?:^|[/:_\s-])(?:o[1-9](?:-|$)|gpt-5|deepseek-r\d|deepseek-reasoner|qwq|magistral|"
    r"[a-z0-9.]*-?thinking|[a-z0-9.]*-?reasoner|r1(?:-|$))",
    re.IGNORECASE,
)
_SLACK = 1e-3  # seconds: a timer that fires this close to a limit counts as that limit


def wants_reasoning(model: str, body: Mapping[str, Any] | None) -> bool:
    """Whether a request asks for reasoning, from its body or its model's name."""
    if body:
        for name in _REASONING_FIELDS:
            if name in body and not _is_off(body[name]):
                return True
        generation = body.get("generationConfig")
        if isinstance(generation, Mapping):
            thinking = generation.get("thinkingConfig")
            if isinstance(thinking, Mapping) and thinking.get("thinkingBudget", 1) != 0:
                return True
    return bool(_REASONING_MODEL.search(model or ""))


def _is_off(value: Any) -> bool:
    if isinstance(value, Mapping):
        return value.get("type") == "disabled" or value.get("effort") in _OFF[1:]
    try:
        return value in _OFF
    except TypeError:  # an unhashable value that is not a mapping: it asks for something
        return False


def timeout_hint(limit: str) -> str:
    """How to raise a stream limit, in the library, a notebook and the service."""
    return (
        f"To allow more, pass stream_config=StreamConfig({limit}=...) in Python, run "
        f"%config LLMMagics.{limit} = ... in a notebook, or start the service with "
        f"--{limit.replace('_', '-')} ... (or {STREAM_ENV[limit]}) (None in Python, 0 "
        "elsewhere, means no limit)."
    )


@dataclass(slots=True)
class StreamClock:
    """The limits of one stream, in loop time. `start` is when the slot was acquired;
    `sent()` restarts the first-text clock for each attempt."""

    cfg: StreamConfig
    reasoning: bool
    start: float
    deadline: float | None = None
    first_deadline: float | None = None
    received: int = 0  # bytes of the current attempt's body

    def __post_init__(self) -> None:
        if self.cfg.stream_timeout:
            self.deadline = self.start + self.cfg.stream_timeout

    def sent(self, now: float) -> None:
        seconds = self.cfg.first_token_limit(self.reasoning)[1]
        self.first_deadline = now + seconds if seconds else None
        self.received = 0

    def head_limit(self) -> float | None:
        """Bound on the wait for the response head."""
        return _earliest(self.deadline, self.first_deadline)

    def read_limit(self, now: float, text_started: bool) -> float | None:
        """Bound on the wait for the next network read."""
        if not text_started:
            return _earliest(self.deadline, self.first_deadline)
        gap = self.cfg.chunk_timeout
        return _earliest(self.deadline, now + gap if gap else None)

    def expired(
        self, now: float, provider: str, chunks: int, text_started: bool
    ) -> LLMTimeoutError:
        """The error for the limit that ran out at `now`."""
        cfg = self.cfg
        elapsed = now - self.start
        if self.deadline is not None and now >= self.deadline - _SLACK:
            name, seconds = "stream_timeout", cfg.stream_timeout
            what = (
                f"the stream took longer than stream_timeout={seconds:g}s "
                f"({chunks} chunks, {self.received:,} bytes arrived)"
            )
        elif not text_started:
            name, seconds = cfg.first_token_limit(self.reasoning)
            arrived = (
                f"only {self.received:,} bytes without text (pings or headers)"
                if self.received
                else "nothing"
            )
            what = (
                f"no text or thinking within {name}={seconds:g}s of sending the request "
                f"({arrived} arrived)"
            )
            longer = cfg.reasoning_first_token_timeout
            if not self.reasoning and longer:
                what += (
                    "; a model that thinks before answering gets "
                    f"reasoning_first_token_timeout={longer:g}s when the request asks for "
                    "reasoning (reasoning_effort, thinking)"
                )
        else:
            name, seconds = "chunk_timeout", cfg.chunk_timeout
            what = (
                f"the stream went silent: no bytes for chunk_timeout={seconds:g}s after "
                f"{chunks} chunks ({self.received:,} bytes)"
            )
        return LLMTimeoutError(
            f"{what}; gave up after {elapsed:.1f}s.",
            provider=provider,
            hint=timeout_hint(name),
            limit=name,
            limit_seconds=seconds,
            elapsed=elapsed,
        )


def _earliest(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return a if a < b else b
