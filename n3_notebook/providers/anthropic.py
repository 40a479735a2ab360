"""Anthropic Messages API. Named SSE events: message_start, content_block_start/delta/stop,
message_delta (stop_reason and cumulative usage), message_stop, `ping` anywhere and `error`
mid-stream. Some real streams end without message_stop, so it is not required."""

from __future__ import annotations

import json
from typing import Any, ClassVar

from ..core.base import BaseProvider, parse_json_line, split_system
from ..core.http import RequestSpec
from ..core.types import Message, StreamChunk, Usage
from ..wire import SSEEvent
from ._common import Parsed, final_chunk, inband_error, put_if, truncated

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
    env_keys: ClassVar[tuple[str, ...]] = ("ANTHROPIC_API_KEY",)
    env_base_urls: ClassVar[tuple[str, ...]] = ("ANTHROPIC_BASE_URL",)
    default_base_url: ClassVar[str] = "https://api.anthropic.com"
    default_model: ClassVar[str] = "claude-3-5-haiku-latest"
    request_id_headers: ClassVar[tuple[str, ...]] = ("request-id", "x-request-id")

    def auth_headers(self) -> dict[str, str]:
        headers = {"anthropic-version": API_VERSION}
        if self._api_key:
            headers["x-api-key"] = self._api_key
        return headers

    def build_request(
        self, messages: list[Message], system: str | None, stream: bool, params: dict[str, Any]
    ) -> RequestSpec:
        system_text, turns = split_system(messages, system)
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [m.as_dict() for m in turns],
        }
        extra = dict(params)
        body["max_tokens"] = extra.pop("max_tokens", None) or DEFAULT_MAX_TOKENS
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
        text = "".join(
            b.get("text", "") for b in payload.get("content") or () if b.get("type") == "text"
        )
        meta: dict[str, Any] = {}
        put_if(meta, "stop_sequence", payload.get("stop_sequence"))
        usage = payload.get("usage") or {}
        return Parsed(
            content=text,
            raw_finish_reason=payload.get("stop_reason"),
            usage=Usage.of(usage.get("input_tokens"), usage.get("output_tokens")),
            model=payload.get("model"),
            metadata=meta,
        )

    def normalize_finish(self, raw: str | None) -> str | None:
        return None if raw is None else _FINISH.get(raw, "other")

    def stream_mapper(self) -> _AnthropicStream:
        return _AnthropicStream(self.name, self.model)


class _AnthropicStream:
    __slots__ = (
        "done",
        "input_tokens",
        "model",
        "output_tokens",
        "provider",
        "reasoning",
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
        self.reasoning: list[str] = []

    def feed(self, event: SSEEvent) -> list[StreamChunk]:
        kind = event.event
        if kind == "ping":
            return []
        if kind == "content_block_delta":
            delta = parse_json_line(self.provider, event.data).get("delta") or {}
            if delta.get("type") == "text_delta":
                text = delta.get("text")
                return [StreamChunk(text, None, self.model)] if text else []
            if delta.get("type") == "thinking_delta":
                self.reasoning.append(delta.get("thinking", ""))
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
        elif kind == "message_stop":
            self.done = True
            return [self._final()]
        elif kind == "error":
            err = payload.get("error") or {}
            raise inband_error(
                self.provider, err.get("message") or json.dumps(err), err.get("type")
            )
        return []

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
            self.reasoning,
            stop_sequence=self.stop_sequence,
        )
