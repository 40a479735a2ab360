"""Conversation helpers every provider adapter shares: messages from what a caller passes,
system prompts split out for APIs with a separate field, the finish reason of an answer
that made tool calls."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .types import Message, ToolCall

__all__ = ["MessageLike", "as_messages", "finish_with_calls", "split_system"]

MessageLike = Message | Mapping[str, Any]


def as_messages(messages: Iterable[MessageLike]) -> list[Message]:
    """Accept Message objects or {"role", "content", ...} dicts; validate them."""
    out = [Message.coerce(m) for m in messages]
    if not out:
        raise ValueError("at least one message is needed")
    return out


def finish_with_calls(finish: str | None, calls: Sequence[ToolCall] | None) -> str | None:
    """An answer that made calls finished with "tool_calls", also where the provider says
    "stop" (Gemini's STOP, Ollama's done_reason)."""
    return "tool_calls" if calls and finish == "stop" else finish


def split_system(
    messages: Sequence[Message], system: str | None
) -> tuple[str | None, list[Message]]:
    """Pull system messages out of a conversation (for APIs with a separate system field)."""
    parts = [system] if system else []
    rest: list[Message] = []
    for m in messages:
        if m.role == "system":
            parts.append(m.text)
        else:
            rest.append(m)
    return ("\n\n".join(parts) if parts else None), rest
