"""OpenAI chat completions (and OpenAI-compatible servers: vLLM, llama.cpp, LM Studio,
Ollama's /v1). SSE with `data:` only and a `[DONE]` sentinel; with
`stream_options.include_usage` the last chunk has `choices: []` and the usage."""

from __future__ import annotations

from typing import Any, ClassVar

from ..core.base import BaseProvider, parse_json_line
from ..core.http import RequestSpec
from ..core.types import Message, StreamChunk, Usage
from ..wire import SSEDecoder, SSEEvent
from ._common import Parsed, final_chunk, inband_error, put_if, truncated

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
    env_keys: ClassVar[tuple[str, ...]] = ("OPENAI_API_KEY",)
    env_base_urls: ClassVar[tuple[str, ...]] = ("OPENAI_BASE_URL",)
    default_base_url: ClassVar[str] = "https://api.openai.com/v1"
    default_model: ClassVar[str] = "gpt-4o-mini"
    request_id_headers: ClassVar[tuple[str, ...]] = ("x-request-id",)

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}

    def build_request(
        self, messages: list[Message], system: str | None, stream: bool, params: dict[str, Any]
    ) -> RequestSpec:
        msgs = [{"role": "system", "content": system}] if system else []
        msgs.extend(m.as_dict() for m in messages)
        body: dict[str, Any] = {"model": self.model, "messages": msgs}
        extra = dict(params)
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
        meta: dict[str, Any] = {}
        put_if(meta, "reasoning", message.get("reasoning_content") or message.get("reasoning"))
        return Parsed(
            content=message.get("content") or "",
            raw_finish_reason=choice.get("finish_reason"),
            usage=_usage(payload.get("usage")),
            model=payload.get("model"),
            metadata=meta,
        )

    def normalize_finish(self, raw: str | None) -> str | None:
        return None if raw is None else _FINISH.get(raw, "other")

    def make_decoder(self) -> SSEDecoder:
        return SSEDecoder(extra_fields=frozenset({"error"}))

    def stream_mapper(self) -> _OpenAIStream:
        return _OpenAIStream(self.name, self.model)


class _OpenAIStream:
    __slots__ = ("done", "finish", "model", "provider", "reasoning", "usage")

    def __init__(self, provider: str, model: str) -> None:
        self.provider = provider
        self.model = model
        self.done = False
        self.finish: str | None = None
        self.usage: Usage | None = None
        self.reasoning: list[str] = []

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
            if text:
                out.append(StreamChunk(text, None, self.model))
            thought = delta.get("reasoning_content") or delta.get("reasoning")
            if thought:
                self.reasoning.append(thought)
            if choice.get("finish_reason"):
                self.finish = choice["finish_reason"]
        return out

    def end(self) -> list[StreamChunk]:
        # Some compatible servers end without [DONE]: a seen finish reason is enough.
        if self.finish is None:
            raise truncated(self.provider)
        self.done = True
        return [self._final()]

    def _final(self) -> StreamChunk:
        return final_chunk(self.finish, self.usage, self.model, self.reasoning)


def _usage(raw: Any) -> Usage:
    if not isinstance(raw, dict):
        return Usage()
    return Usage.of(raw.get("prompt_tokens"), raw.get("completion_tokens"))


def _error(provider: str, err: Any) -> Exception:
    if isinstance(err, dict):
        message = err.get("message") or str(err)
        return inband_error(provider, message, err.get("type"), err.get("code"))
    return inband_error(provider, str(err))
