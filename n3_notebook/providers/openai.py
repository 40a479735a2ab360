"""OpenAI chat completions (and OpenAI-compatible servers: vLLM, llama.cpp, LM Studio,
Ollama's /v1). SSE with `data:` only and a `[DONE]` sentinel; with
`stream_options.include_usage` the last chunk has `choices: []` and the usage."""

from __future__ import annotations

import json
from typing import Any, ClassVar

from ..core.base import BaseProvider
from ..core.batch import BatchAPI
from ..core.catalog import ModelInfo
from ..core.defaults import default_model_for
from ..core.features import Features, effort_of, take_features
from ..core.http import RequestSpec
from ..core.schema import closed, strict_ready
from ..core.snippets import parse_json_line
from ..core.types import Message, StreamChunk, Usage
from ..wire import SSEDecoder, SSEEvent
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
from .batches import OpenAIBatchAPI

_FINISH = {
    "stop": "stop",
    "length": "length",
    "content_filter": "content_filter",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
}
# Models that take max_completion_tokens instead of max_tokens.
_COMPLETION_TOKENS_PREFIXES = ("o1", "o3", "o4", "gpt-5")


class OpenAIProvider(BaseProvider):
    """OpenAI `/v1/chat/completions`, Bearer auth."""

    name: ClassVar[str] = "openai"
    display_name: ClassVar[str] = "OpenAI"
    batch_api: ClassVar[BatchAPI | None] = OpenAIBatchAPI()
    env_keys: ClassVar[tuple[str, ...]] = ("OPENAI_API_KEY",)
    env_base_urls: ClassVar[tuple[str, ...]] = ("OPENAI_BASE_URL",)
    default_base_url: ClassVar[str] = "https://api.openai.com/v1"
    default_model: ClassVar[str] = default_model_for("openai")
    request_id_headers: ClassVar[tuple[str, ...]] = ("x-request-id",)

    async def list_models(self, *, refresh: bool = False) -> list[ModelInfo]:
        """The models this key can use (every page of GET /models), cached per process."""
        return await listing.list_models(self, refresh=refresh)

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}

    def build_request(
        self, messages: list[Message], system: str | None, stream: bool, params: dict[str, Any]
    ) -> RequestSpec:
        msgs = [{"role": "system", "content": system}] if system else []
        msgs.extend(chat_message(m) for m in messages)
        body: dict[str, Any] = {"model": self.model, "messages": msgs}
        extra = dict(params)
        add_features(body, take_features(extra))
        max_tokens = extra.pop("max_tokens", None)
        if max_tokens is not None:
            key = (
                "max_completion_tokens"
                if self.model.startswith(_COMPLETION_TOKENS_PREFIXES)
                else "max_tokens"
            )
            body[key] = max_tokens
        put_if(body, "temperature", extra.pop("temperature", None))
        put_if(body, "top_p", extra.pop("top_p", None))
        put_if(body, "stop", extra.pop("stop", None))
        body.update(extra)
        if stream:
            body["stream"] = True
            options = dict(body.get("stream_options") or {})
            options.setdefault("include_usage", True)
            body["stream_options"] = options
        return RequestSpec("POST", "/chat/completions", json=body)

    def parse_response(self, payload: Any) -> Parsed:
        if isinstance(payload, dict) and payload.get("error"):
            raise _error(self.name, payload["error"])
        choice = (payload.get("choices") or [{}])[0]
        message = choice.get("message") or {}
        calls = ToolCallParts(self.name)
        for n, call in enumerate(message.get("tool_calls") or ()):
            function = call.get("function") or {}
            calls.add(
                n, id=call.get("id"), name=function.get("name"), piece=function.get("arguments")
            )
        meta: dict[str, Any] = {}
        put_if(meta, "reasoning_details", _encrypted(message.get("reasoning_details")))
        return Parsed(
            content=message.get("content") or "",
            raw_finish_reason=choice.get("finish_reason"),
            usage=_usage(payload.get("usage")),
            model=payload.get("model"),
            metadata=meta,
            tool_calls=calls.result(),
            reasoning=_reasoning_text(message) or None,
        )

    def normalize_finish(self, raw: str | None) -> str | None:
        return None if raw is None else _FINISH.get(raw, "other")

    def make_decoder(self) -> SSEDecoder:
        return SSEDecoder(extra_fields=frozenset({"error"}))

    def stream_mapper(self) -> _OpenAIStream:
        return _OpenAIStream(self.name, self.model)


def chat_message(m: Message) -> dict[str, Any]:
    """One message in chat-completions form (also Cohere v2's, which copies it)."""
    if m.role == "tool":
        return {"role": "tool", "tool_call_id": m.tool_call_id, "content": m.text}
    out: dict[str, Any] = {"role": m.role}
    if isinstance(m.content, str):
        out["content"] = m.content
    else:
        out["content"] = [
            {"type": "text", "text": p}
            if isinstance(p, str)
            else {"type": "image_url", "image_url": {"url": p.data_url}}
            for p in m.content
            if not isinstance(p, str) or p
        ]
    if m.tool_calls:
        out["tool_calls"] = [
            {
                "id": c.id,
                "type": "function",
                "function": {"name": c.name, "arguments": json.dumps(c.arguments)},
            }
            for c in m.tool_calls
        ]
        if not m.text:
            out["content"] = None
    return out


def function_tools(features: Features) -> list[dict[str, Any]]:
    return [{"type": "function", "function": t.spec()} for t in features.tools]


def add_features(body: dict[str, Any], features: Features) -> None:
    if features.tools:
        body["tools"] = function_tools(features)
    put_if(body, "tool_choice", features.tool_choice)
    if features.schema is not None:
        spec: dict[str, Any] = {"name": features.schema.name, "schema": features.schema.schema}
        if strict_ready(features.schema.schema):  # then the answer is sure to match
            spec.update(schema=closed(features.schema.schema), strict=True)
        body["response_format"] = {"type": "json_schema", "json_schema": spec}
    if features.reasoning is not None:
        body["reasoning_effort"] = effort_of(features.reasoning)


def _reasoning_text(delta: dict[str, Any]) -> str:
    """reasoning_content (vLLM, DeepSeek) or reasoning (OpenRouter, Ollama /v1); OpenRouter
    repeats the same text in reasoning_details, read only when neither field is there."""
    text = delta.get("reasoning_content") or delta.get("reasoning")
    if text:
        return str(text)
    details = delta.get("reasoning_details")
    if isinstance(details, list):
        return "".join(
            d["text"] for d in details if isinstance(d, dict) and isinstance(d.get("text"), str)
        )
    return ""


def _encrypted(details: Any) -> list[Any] | None:
    """Encrypted or summarised reasoning entries: kept in metadata, never shown as text."""
    if not isinstance(details, list):
        return None
    kept = [d for d in details if isinstance(d, dict) and d.get("type") != "reasoning.text"]
    return kept or None


class _OpenAIStream:
    __slots__ = ("calls", "details", "done", "finish", "model", "provider", "usage")

    def __init__(self, provider: str, model: str) -> None:
        self.provider = provider
        self.model = model
        self.done = False
        self.finish: str | None = None
        self.usage: Usage | None = None
        self.calls = ToolCallParts(provider)
        self.details: list[Any] = []

    def feed(self, event: SSEEvent) -> list[StreamChunk]:
        data = event.data
        if data == "[DONE]":
            self.done = True
            return [self._final()]
        if not data:
            return []
        payload = parse_json_line(self.provider, data)
        if event.event == "error" or (isinstance(payload, dict) and payload.get("error")):
            raise _error(self.provider, payload.get("error", payload))
        if not isinstance(payload, dict):
            raise inband_error(self.provider, f"unexpected stream data {data[:200]!r}")
        usage = payload.get("usage")
        if usage:
            self.usage = _usage(usage)
        out: list[StreamChunk] = []
        for choice in payload.get("choices") or ():
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            text = delta.get("content")
            if len(delta) > 1 or not text:  # more than a piece of text: thinking, calls
                self._take_extras(delta, out)
            if text:
                out.append(StreamChunk(text, None, self.model))
            if choice.get("finish_reason"):
                self.finish = choice["finish_reason"]
        return out

    def _take_extras(self, delta: dict[str, Any], out: list[StreamChunk]) -> None:
        thought = _reasoning_text(delta)
        if thought:
            out.append(reasoning_chunk(thought, self.model))
        self.details.extend(_encrypted(delta.get("reasoning_details")) or ())
        for n, call in enumerate(delta.get("tool_calls") or ()):
            function = call.get("function") or {}
            self.calls.add(
                call.get("index", n),
                id=call.get("id"),
                name=function.get("name"),
                piece=function.get("arguments"),
            )

    def end(self) -> list[StreamChunk]:
        # Some compatible servers end without [DONE]: a seen finish reason is enough.
        if self.finish is None:
            raise truncated(self.provider)
        self.done = True
        return [self._final()]

    def _final(self) -> StreamChunk:
        return final_chunk(
            self.finish,
            self.usage,
            self.model,
            self.calls,
            reasoning_details=self.details or None,
        )


def _usage(raw: Any) -> Usage:
    if not isinstance(raw, dict):
        return Usage()
    return Usage.of(raw.get("prompt_tokens"), raw.get("completion_tokens"))


def _error(provider: str, err: Any) -> Exception:
    if isinstance(err, dict):
        message = err.get("message") or str(err)
        return inband_error(provider, message, err.get("type"), err.get("code"))
    return inband_error(provider, str(err))
