"""run_tools=True: ask, run the calls the model makes, send the results back, repeat until
the model answers in text or max_tool_steps rounds of calls have run.

The loop only knows messages: each provider writes the assistant's calls and the tool
results in its own format when it builds the next request.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from typing import Any

from .tools import Tool, ToolResult, as_tools, run_tool_call
from .types import LLMResponse, Message, StreamChunk, ToolCall

__all__ = ["DEFAULT_MAX_TOOL_STEPS", "run_tool_loop", "stream_tool_loop"]

DEFAULT_MAX_TOOL_STEPS = 5

Step = Callable[[list[Message], dict[str, Any]], Awaitable[LLMResponse]]
StreamStep = Callable[[list[Message], dict[str, Any]], AsyncGenerator[StreamChunk, None]]


def _tool_map(params: dict[str, Any], max_steps: Any) -> dict[str, Tool]:
    if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
        raise ValueError(f"max_tool_steps must be a positive integer, got {max_steps!r}")
    tools = as_tools(params.get("tools"))
    if not any(t.function is not None for t in tools):
        raise ValueError(
            "run_tools=True needs tools= with at least one Python function to run "
            "(a Tool(...) without function= can be offered but not run)"
        )
    return {t.name: t for t in tools}


def assistant_turn(response: LLMResponse) -> Message:
    """The model's answer as a message to send back (with its calls and replay data)."""
    replay = response.metadata.get("replay")
    return Message(
        "assistant",
        response.content,
        tuple(response.tool_calls),
        metadata={"replay": replay} if replay else None,
    )


def result_turns(results: Sequence[ToolResult]) -> list[Message]:
    return [
        Message("tool", r.content, tool_call_id=r.call.id, name=r.call.name, is_error=r.is_error)
        for r in results
    ]


async def run_calls(calls: Sequence[ToolCall], tools: dict[str, Tool]) -> list[ToolResult]:
    """Run a step's calls concurrently; results in call order."""
    return list(await asyncio.gather(*(run_tool_call(c, tools) for c in calls)))


async def run_tool_loop(
    step: Step, messages: list[Message], params: dict[str, Any], max_steps: Any
) -> LLMResponse:
    """The final answer, with every message of the exchange in .messages."""
    tools = _tool_map(params, max_steps)
    history = list(messages)
    rounds = 0
    while True:
        response = await step(history, params)
        history.append(assistant_turn(response))
        if not response.tool_calls or rounds >= max_steps:
            response.messages = history
            return response
        rounds += 1
        history.extend(result_turns(await run_calls(response.tool_calls, tools)))


async def stream_tool_loop(
    step: StreamStep, messages: list[Message], params: dict[str, Any], max_steps: Any
) -> AsyncGenerator[StreamChunk, None]:
    """The chunks of every round, in order. A round that ends in calls yields its final
    chunk (finish "tool_calls") as usual, then one chunk whose metadata["tool_results"]
    lists what each call returned; the last chunk's metadata["messages"] is the exchange."""
    tools = _tool_map(params, max_steps)
    history = list(messages)
    rounds = 0
    while True:
        parts: list[str] = []
        final: StreamChunk | None = None
        stream = step(history, params)
        try:
            async for chunk in stream:
                if chunk.content:
                    parts.append(chunk.content)
                if not chunk.content and chunk.reasoning is None:  # the round's last chunk
                    final = chunk
                    continue
                yield chunk
        finally:
            await stream.aclose()
        if final is None:
            return
        calls = list(final.tool_calls or ())
        replay = (final.metadata or {}).get("replay")
        history.append(
            Message(
                "assistant",
                "".join(parts),
                tuple(calls),
                metadata={"replay": replay} if replay else None,
            )
        )
        if not calls or rounds >= max_steps:
            final.metadata = {**(final.metadata or {}), "messages": history}
            yield final
            return
        yield final
        rounds += 1
        results = await run_calls(calls, tools)
        history.extend(result_turns(results))
        yield StreamChunk(
            "",
            None,
            final.model,
            metadata={
                "tool_results": [
                    {
                        "id": r.call.id,
                        "name": r.call.name,
                        "content": r.content,
                        "is_error": r.is_error,
                    }
                    for r in results
                ]
            },
        )
