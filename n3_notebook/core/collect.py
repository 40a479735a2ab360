"""Assembling an LLMResponse from a stream, also when it ends early (error, cancel)."""

from __future__ import annotations

import time
from typing import Any

from .types import LLMResponse, StreamChunk, Usage


class ResponseBuilder:
    """Feed it every chunk of a stream; build() gives the LLMResponse so far."""

    def __init__(self, provider: str, model: str) -> None:
        self.provider = provider
        self.model = model
        self.parts: list[str] = []
        self.thoughts: list[str] = []
        self.chunks = 0
        self.started = time.perf_counter()
        self.first_token_at: float | None = None
        self.final: StreamChunk | None = None

    def add(self, chunk: StreamChunk) -> None:
        if chunk.reasoning:
            self.thoughts.append(chunk.reasoning)
        if chunk.content:
            if self.first_token_at is None:
                self.first_token_at = time.perf_counter()
            self.parts.append(chunk.content)
            self.chunks += 1
        if chunk.finish_reason is not None or chunk.usage is not None:
            self.final = chunk

    @property
    def text(self) -> str:
        return "".join(self.parts)

    @property
    def reasoning(self) -> str | None:
        return "".join(self.thoughts) if self.thoughts else None

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    @property
    def time_to_first_token(self) -> float | None:
        return None if self.first_token_at is None else self.first_token_at - self.started

    @property
    def output_tokens(self) -> int:
        if self.final is not None and self.final.usage is not None:
            return self.final.usage.output_tokens or self.chunks
        return self.chunks

    def build(self, finish_reason: str | None = None, **metadata: Any) -> LLMResponse:
        """The response; finish_reason overrides the stream's (e.g. "cancelled", "error")."""
        final = self.final
        meta: dict[str, Any] = dict(final.metadata or {}) if final else {}
        meta.update(metadata)
        messages = meta.pop("messages", None)
        return LLMResponse(
            content=self.text,
            model=(final.model if final and final.model else self.model),
            provider=self.provider,
            finish_reason=finish_reason or (final.finish_reason if final else None),
            usage=(final.usage if final and final.usage else Usage.of(0, self.chunks)),
            raw_finish_reason=meta.get("raw_finish_reason"),
            latency=self.elapsed,
            time_to_first_token=self.time_to_first_token,
            request_id=meta.get("request_id"),
            retries=int(meta.get("retries") or 0),
            metadata=meta,
            tool_calls=list(final.tool_calls or ()) if final else [],
            reasoning=self.reasoning,
            messages=list(messages or ()),
        )
