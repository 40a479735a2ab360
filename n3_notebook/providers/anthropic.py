"""Anthropic Messages API. Named SSE events: message_start, content_block_start/delta/stop,
message_delta (stop_reason and cumulative usage), message_stop, `ping` anywhere and `error`
mid-stream. Some real streams end without message_stop, so it is not required."""

from __future__ import annotations

import json
from typing import Any, ClassVar

from ..core.base import BaseProvider
from ..core.batch import BatchAPI
from ..core.catalog import ModelInfo
from ..core.defaults import default_model_for
from ..core.features import Features, budget_of, take_features
from ..core.http import RequestSpec
from ..core.messages import split_system
from ..core.schema import closed
from ..core.snippets import parse_json_line
from ..core.types import Message, StreamChunk, Usage
from ..wire import SSEEvent
from . import listing
from ._common import (
    Parsed,
    ToolCallParts,
    final_chunk,
    inband_error,
    put_if,
    reasoning_chunk,
    truncated,
)
from .batches import AnthropicBatchAPI

API_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 1024
_FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


class AnthropicProvider(BaseProvider):
    """Anthropic `/v1/messages`, x-api-key + anthropic-version headers."""

    name: ClassVar[str] = "anthropic"
    display_name: ClassVar[str] = "Anthropic"
    batch_api: ClassVar[BatchAPI | None] = AnthropicBatchAPI()
    env_keys: ClassVar[tuple[str, ...]] = ("ANTHROPIC_API_KEY",)
    env_base_urls: ClassVar[tuple[str, ...]] = ("ANTHROPIC_BASE_URL",)
    default_base_url: ClassVar[str] = "https://api.anthropic.com"
    default_model: ClassVar[str] = default_model_for("anthropic")
    request_id_headers: ClassVar[tuple[str, ...]] = ("request-id", "x-request-id")

    async def list_models(self, *, refresh: bool = False) -> list[ModelInfo]:
        """The models this key can use (every page of GET /v1/models), cached per process."""
        return await listing.list_models(self, refresh=refresh)

    def auth_headers(self) -> dict[str, str]:
        headers = {"anthropic-version": API_VERSION}
        if self._api_key:
            headers["x-api-key"] = self._api_key
        return headers

    def build_request(
        self, messages: list[Message], system: str | None, stream: bool, params: dict[str, Any]
    ) -> RequestSpec:
        system_text, turns = split_system(messages, system)
        body: dict[str, Any] = {"model": self.model, "messages": anthropic_messages(turns)}
        extra = dict(params)
        features = take_features(extra)
        body["max_tokens"] = extra.pop("max_tokens", None) or DEFAULT_MAX_TOKENS
        _add_features(body, features)
        put_if(body, "system", system_text)
        put_if(body, "temperature", extra.pop("temperature", None))
        put_if(body, "top_p", extra.pop("top_p", None))
        stop = extra.pop("stop", None)
        if stop is not None:
            body["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
        body.update(extra)
        if stream:
            body["stream"] = True
        return RequestSpec("POST", "/v1/messages", json=body)

    def parse_response(self, payload: Any) -> Parsed:
        if isinstance(payload, dict) and payload.get("type") == "error":
            err = payload.get("error") or {}
            raise inband_error(self.name, err.get("message", ""), err.get("type"))
        texts: list[str] = []
        thoughts: list[str] = []
        replay: list[dict[str, Any]] = []
        calls = ToolCallParts(self.name)
        for n, block in enumerate(payload.get("content") or ()):
            kind = block.get("type")
            if kind == "text":
                texts.append(block.get("text", ""))
            elif kind == "thinking":
                thoughts.append(block.get("thinking", ""))
                replay.append(block)
            elif kind == "redacted_thinking":
                replay.append(block)
            elif kind == "tool_use":
                calls.add(n, id=block.get("id"), name=block.get("name"), whole=block.get("input"))
        meta: dict[str, Any] = {}
        put_if(meta, "stop_sequence", payload.get("stop_sequence"))
        put_if(meta, "replay", replay or None)
        usage = payload.get("usage") or {}
        return Parsed(
            content="".join(texts),
            raw_finish_reason=payload.get("stop_reason"),
            usage=Usage.of(usage.get("input_tokens"), usage.get("output_tokens")),
            model=payload.get("model"),
            metadata=meta,
            tool_calls=calls.result(),
            reasoning="".join(thoughts) or None,
        )

    def normalize_finish(self, raw: str | None) -> str | None:
        return None if raw is None else _FINISH.get(raw, "other")

    def stream_mapper(self) -> _AnthropicStream:
        return _AnthropicStream(self.name, self.model)


def anthropic_messages(turns: list[Message]) -> list[dict[str, Any]]:
    """Messages in Anthropic's form: images as base64 (or url) blocks, calls as tool_use
    blocks after the replayed thinking, and tool results (consecutive ones merged) as
    tool_result blocks of one user turn."""
    out: list[dict[str, Any]] = []
    for m in turns:
        if m.role == "tool":
            block: dict[str, Any] = {
                "type": "tool_result",
                "tool_use_id": m.tool_call_id,
                "content": m.text,
            }
            if m.is_error:
                block["is_error"] = True
            last = out[-1] if out else None
            if last and last["role"] == "user" and last.get("_results"):
                last["content"].append(block)
            else:
                out.append({"role": "user", "content": [block], "_results": True})
            continue
        if isinstance(m.content, str) and not m.tool_calls:
            out.append({"role": m.role, "content": m.content})
            continue
        blocks: list[dict[str, Any]] = list((m.metadata or {}).get("replay") or ())
        for part in m.parts:
            if isinstance(part, str):
                if part:
                    blocks.append({"type": "text", "text": part})
            elif part.data is None:
                blocks.append({"type": "image", "source": {"type": "url", "url": part.url}})
            else:
                source = {"type": "base64", "media_type": part.media_type, "data": part.base64}
                blocks.append({"type": "image", "source": source})
        for call in m.tool_calls:
            blocks.append(
                {"type": "tool_use", "id": call.id, "name": call.name, "input": call.arguments}
            )
        out.append({"role": m.role, "content": blocks})
    for item in out:
        item.pop("_results", None)
    return out


def _add_features(body: dict[str, Any], features: Features) -> None:
    if features.tools:
        body["tools"] = [
            {"name": t.name, "description": t.description, "input_schema": t.params}
            for t in features.tools
        ]
    put_if(body, "tool_choice", features.tool_choice)
    if features.schema is not None:
        body["output_config"] = {
            "format": {"type": "json_schema", "schema": closed(features.schema.schema)}
        }
    if features.reasoning is not None:
        budget = max(1024, budget_of(features.reasoning))
        body["thinking"] = {"type": "enabled", "budget_tokens": budget}
        if body["max_tokens"] <= budget:  # thinking counts against max_tokens
            body["max_tokens"] += budget


class _AnthropicStream:
    __slots__ = (
        "blocks",
        "calls",
        "done",
        "input_tokens",
        "model",
        "output_tokens",
        "provider",
        "replay",
        "stop_reason",
        "stop_sequence",
    )

    def __init__(self, provider: str, model: str) -> None:
        self.provider = provider
        self.model = model
        self.done = False
        self.stop_reason: str | None = None
        self.stop_sequence: str | None = None
        self.input_tokens = 0
        self.output_tokens = 0
        self.calls = ToolCallParts(provider)
        self.blocks: dict[Any, dict[str, Any]] = {}  # content blocks by index
        self.replay: list[dict[str, Any]] = []  # thinking blocks, to send back verbatim

    def feed(self, event: SSEEvent) -> list[StreamChunk]:
        kind = event.event
        if kind == "ping":
            return []
        if kind == "content_block_delta":
            payload = parse_json_line(self.provider, event.data)
            delta = payload.get("delta") or {}
            dtype = delta.get("type")
            if dtype == "text_delta":
                text = delta.get("text")
                return [StreamChunk(text, None, self.model)] if text else []
            block = self.blocks.get(payload.get("index"))
            if dtype == "thinking_delta":
                thought = delta.get("thinking")
                if block is not None and thought:
                    block["thinking"] = block.get("thinking", "") + thought
                return [reasoning_chunk(thought, self.model)] if thought else []
            if dtype == "signature_delta" and block is not None:
                block["signature"] = block.get("signature", "") + (delta.get("signature") or "")
            elif dtype == "input_json_delta" and block is not None and block["type"] == "tool_use":
                self.calls.add(payload.get("index"), piece=delta.get("partial_json"))
            return []
        if not event.data:
            return []
        payload = parse_json_line(self.provider, event.data)
        if not isinstance(payload, dict):
            raise inband_error(self.provider, f"unexpected stream data {event.data[:200]!r}")
        kind = payload.get("type", kind)
        if kind == "message_start":
            message = payload.get("message") or {}
            self.model = message.get("model") or self.model
            self._take_usage(message.get("usage"))
        elif kind == "message_delta":
            delta = payload.get("delta") or {}
            self.stop_reason = delta.get("stop_reason") or self.stop_reason
            self.stop_sequence = delta.get("stop_sequence") or self.stop_sequence
            self._take_usage(payload.get("usage"))
        elif kind == "content_block_start":
            self._start_block(payload.get("index"), payload.get("content_block") or {})
        elif kind == "message_stop":
            self.done = True
            return [self._final()]
        elif kind == "error":
            err = payload.get("error") or {}
            raise inband_error(
                self.provider, err.get("message") or json.dumps(err), err.get("type")
            )
        return []

    def _start_block(self, index: Any, block: dict[str, Any]) -> None:
        kind = block.get("type")
        self.blocks[index] = {"type": kind}
        if kind == "tool_use":  # server_tool_use / mcp_tool_use are not client calls
            self.calls.add(
                index, id=block.get("id"), name=block.get("name"), whole=block.get("input")
            )
        elif kind == "thinking":
            self.blocks[index] = {"type": "thinking", "thinking": block.get("thinking") or ""}
            self.replay.append(self.blocks[index])
        elif kind == "redacted_thinking":
            self.replay.append(dict(block))

    def _take_usage(self, usage: Any) -> None:
        if isinstance(usage, dict):
            if usage.get("input_tokens") is not None:
                self.input_tokens = usage["input_tokens"]
            if usage.get("output_tokens") is not None:
                self.output_tokens = usage["output_tokens"]  # cumulative, not a delta

    def end(self) -> list[StreamChunk]:
        if self.stop_reason is None:
            raise truncated(self.provider)
        self.done = True
        return [self._final()]

    def _final(self) -> StreamChunk:
        return final_chunk(
            self.stop_reason,
            Usage.of(self.input_tokens, self.output_tokens),
            self.model,
            self.calls,
            stop_sequence=self.stop_sequence,
            replay=self.replay or None,
        )
