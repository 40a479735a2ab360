"""One stream shown in one view: the unit that %%llm, comparisons and chains run."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from ..core.base import BaseProvider
from ..core.collect import ResponseBuilder
from ..core.errors import LLMError
from ..core.metrics import logger
from ..core.schema import as_output_schema
from ..core.types import LLMResponse, Message, StreamChunk, StreamConfig
from .errors import describe
from .stats import Stats
from .views import View

__all__ = ["StreamRun", "label", "note"]


def label(provider: BaseProvider) -> str:
    """A pane's title: provider:model."""
    return f"{provider.name}:{provider.model}"


def note(provider: BaseProvider) -> str | None:
    """A pane's subtitle: whether the answer comes from the offline emulator."""
    if provider.name == "emulator":
        return "offline demo model"
    if getattr(provider, "offline", False):
        return "offline emulator"
    return None


def tool_lines(chunk: StreamChunk) -> list[str]:
    """What a chunk says about tools: the calls it asks for, the results of a round."""
    lines = [
        f"→ {call.name}({json.dumps(call.arguments, ensure_ascii=False)})"
        for call in chunk.tool_calls or ()
    ]
    for result in (chunk.metadata or {}).get("tool_results") or ():
        mark = "✗" if result.get("is_error") else "←"
        lines.append(f"{mark} {result.get('name')}: {result.get('content')}")
    return lines


class StreamRun:
    """Streams a conversation from a provider into a view; keeps what arrived.

    go() returns the LLMResponse; on an LLMError it returns the partial response with
    finish_reason "error" and the error in .error; on cancellation the partial response
    is kept in .response and CancelledError propagates."""

    def __init__(
        self,
        provider: BaseProvider,
        messages: list[Message],
        view: View,
        system: str | None = None,
        params: dict[str, Any] | None = None,
        stream_config: StreamConfig | None = None,
        title: str | None = None,
    ) -> None:
        self.provider = provider
        self.messages = messages
        self.view = view
        self.system = system
        self.params = params or {}
        self.stream_config = stream_config
        self.label = title or label(provider)
        self.builder = ResponseBuilder(provider.name, provider.model)
        self.response: LLMResponse | None = None
        self.parsed: Any = None
        self.error: LLMError | None = None
        self.state = "waiting"

    def stats(self) -> Stats:
        b = self.builder
        final = b.final
        return Stats(
            ttft=b.time_to_first_token,
            tokens=b.output_tokens,
            elapsed=b.elapsed,
            finish=final.finish_reason if final else None,
            retries=int((final.metadata or {}).get("retries") or 0) if final else 0,
        )

    async def go(self) -> LLMResponse:
        view, builder = self.view, self.builder
        view.start()
        finish: str | None = None
        error_text: str | None = None
        try:
            stream = self.provider.stream_chat(
                self.messages, system=self.system, stream_config=self.stream_config, **self.params
            )
            try:
                async for chunk in stream:
                    builder.add(chunk)
                    if chunk.content:
                        view.update_stats(self.stats())
                        view.append(chunk.content)
                    elif chunk.reasoning:
                        view.append_reasoning(chunk.reasoning)
                    else:
                        for line in tool_lines(chunk):
                            view.tool_event(line)
            finally:
                await stream.aclose()
            self.state = "done"
            schema = as_output_schema(self.params.get("schema"))
            if schema is not None and not (builder.final and builder.final.tool_calls):
                self.parsed = schema.parse(builder.text, self.provider.name)
        except asyncio.CancelledError:
            self.state, finish = "cancelled", "cancelled"
            raise
        except LLMError as exc:
            self.state, finish = "failed", "error"
            self.error = exc
            error_text = describe(exc)
        except Exception as exc:  # a bug of ours: shown short, logged in full
            logger.exception("unexpected error while streaming %s", self.label)
            self.state, finish = "failed", "error"
            self.error = LLMError(
                f"unexpected {type(exc).__name__}: {exc}",
                provider=self.provider.name,
                hint="This is a bug in n3_notebook; the full traceback is in the "
                "'n3_notebook' log. Please report it.",
            )
            error_text = describe(self.error)
        finally:
            self.response = builder.build(finish)
            self.response.parsed = self.parsed
            stats = self.stats()
            if finish:
                stats.finish = finish
            view.finish(self.state, stats, error_text)
        return self.response
