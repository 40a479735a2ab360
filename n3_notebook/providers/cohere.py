"""Cohere chat. v2 `/v2/chat` (default) streams SSE whose JSON carries a `type`
(content-delta, message-end with finish_reason and usage; errors reported in message-end);
v1 `/v1/chat` (api_version="v1") streams NDJSON with event_type, preamble and stream-end."""

from __future__ import annotations

from typing import Any, ClassVar

from ..core.base import BaseProvider
from ..core.catalog import ModelInfo
from ..core.defaults import default_model_for
from ..core.features import Features, budget_of, take_features
from ..core.http import RequestSpec
from ..core.messages import split_system
from ..core.snippets import parse_json_line
from ..core.types import Message, StreamChunk, Usage
from ..wire import NDJSONDecoder, SSEDecoder, SSEEvent
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
from .openai import chat_message, function_tools

_FINISH = {
    "COMPLETE": "stop",
    "STOP_SEQUENCE": "stop",
    "MAX_TOKENS": "length",
    "ERROR_LIMIT": "length",
    "TOOL_CALL": "tool_calls",
    "ERROR": "error",
    "ERROR_TOXIC": "content_filter",
    "USER_CANCEL": "cancelled",
    "TIMEOUT": "error",
}
_ERRORS = {"ERROR", "ERROR_TOXIC"}
_V1_ROLES = {"user": "USER", "assistant": "CHATBOT", "system": "SYSTEM"}


class CohereProvider(BaseProvider):
    """Cohere chat, Bearer auth; api_version "v2" (SSE, default) or "v1" (NDJSON)."""

    name: ClassVar[str] = "cohere"
    display_name: ClassVar[str] = "Cohere"
    env_keys: ClassVar[tuple[str, ...]] = ("CO_API_KEY", "COHERE_API_KEY")
    env_base_urls: ClassVar[tuple[str, ...]] = ("CO_API_URL", "COHERE_BASE_URL")
    default_base_url: ClassVar[str] = "https://api.cohere.com"
    default_model: ClassVar[str] = default_model_for("cohere")
    request_id_headers: ClassVar[tuple[str, ...]] = ("x-request-id", "x-trace-id")

    def __init__(self, model: str | None = None, *, api_version: str = "v2", **kwargs: Any):
        if api_version not in ("v1", "v2"):
            raise ValueError(f'api_version must be "v1" or "v2", got {api_version!r}')
        self.api_version = api_version
        super().__init__(model, **kwargs)

    async def list_models(self, *, refresh: bool = False) -> list[ModelInfo]:
        """The chat models this key can use (every page of GET /v1/models?endpoint=chat),
        cached per process."""
        return await listing.list_models(self, refresh=refresh)

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}

    def make_decoder(self) -> SSEDecoder | NDJSONDecoder:
        return SSEDecoder() if self.api_version == "v2" else NDJSONDecoder()

    def build_request(
        self, messages: list[Message], system: str | None, stream: bool, params: dict[str, Any]
    ) -> RequestSpec:
        extra = dict(params)
        features = take_features(extra)
        body: dict[str, Any] = {"model": self.model}
        if self.api_version == "v2":
            msgs = [{"role": "system", "content": system}] if system else []
            msgs.extend(_v2_message(m) for m in messages)
            body["messages"] = msgs
            _add_features(body, features)
        else:
            _v1_check(messages, features)
            preamble, turns = split_system(messages, system)
            if not turns or turns[-1].role != "user":
                raise ValueError("Cohere v1 chat needs the conversation to end with a user turn")
            body["message"] = turns[-1].content
            if len(turns) > 1:
                body["chat_history"] = [
                    {"role": _V1_ROLES[m.role], "message": m.content} for m in turns[:-1]
                ]
            put_if(body, "preamble", preamble)
        put_if(body, "temperature", extra.pop("temperature", None))
        put_if(body, "max_tokens", extra.pop("max_tokens", None))
        put_if(body, "p", extra.pop("top_p", None))
        stop = extra.pop("stop", None)
        if stop is not None:
            body["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
        body.update(extra)
        body["stream"] = stream
        return RequestSpec("POST", f"/{self.api_version}/chat", json=body)

    def parse_response(self, payload: Any) -> Parsed:
        calls = ToolCallParts(self.name)
        meta: dict[str, Any] = {}
        thinking = None
        if self.api_version == "v2":
            message = payload.get("message") or {}
            content = message.get("content") or ()
            text = "".join(c.get("text", "") for c in content if c.get("type") == "text")
            thinking = "".join(
                c.get("thinking", "") for c in content if c.get("type") == "thinking"
            )
            for n, call in enumerate(message.get("tool_calls") or ()):
                function = call.get("function") or {}
                calls.add(
                    n, id=call.get("id"), name=function.get("name"), piece=function.get("arguments")
                )
            put_if(meta, "tool_plan", message.get("tool_plan"))
            finish = payload.get("finish_reason")
            usage = _usage(payload.get("usage"))
        else:
            text = payload.get("text") or ""
            finish = payload.get("finish_reason")
            usage = _usage(payload.get("meta"))
        if finish in _ERRORS:
            raise inband_error(self.name, payload.get("message") or f"finish_reason {finish}")
        return Parsed(text, finish, usage, self.model, meta, calls.result(), thinking or None)

    def normalize_finish(self, raw: str | None) -> str | None:
        return None if raw is None else _FINISH.get(raw, "other")

    def stream_mapper(self) -> _CohereV2Stream | _CohereV1Stream:
        if self.api_version == "v2":
            return _CohereV2Stream(self.name, self.model)
        return _CohereV1Stream(self.name, self.model)


def _usage(container: Any) -> Usage:
    """Usage from v2 `usage` or v1 `meta`: billed units, else raw token counts."""
    if not isinstance(container, dict):
        return Usage()
    for key in ("billed_units", "tokens"):
        units = container.get(key)
        if isinstance(units, dict) and (
            units.get("input_tokens") is not None or units.get("output_tokens") is not None
        ):
            return Usage.of(units.get("input_tokens"), units.get("output_tokens"))
    return Usage()


def _v2_message(m: Message) -> dict[str, Any]:
    out = chat_message(m)
    if m.role == "assistant" and out.get("content") is None:
        del out["content"]  # a turn of calls only: Cohere wants no null content
    return out


def _add_features(body: dict[str, Any], features: Features) -> None:
    if features.tools:
        body["tools"] = function_tools(features)
    put_if(body, "tool_choice", features.tool_choice)
    if features.schema is not None:
        body["response_format"] = {"type": "json_object", "json_schema": features.schema.schema}
    if features.reasoning is not None:
        body["thinking"] = {"type": "enabled", "token_budget": budget_of(features.reasoning)}


def _v1_check(messages: list[Message], features: Features) -> None:
    used = [
        name
        for name, on in (
            ("tools=", bool(features.tools)),
            ("schema=", features.schema is not None),
            ("reasoning=", features.reasoning is not None),
            ("images", any(m.images for m in messages)),
            ("tool messages", any(m.role == "tool" or m.tool_calls for m in messages)),
        )
        if on
    ]
    if used:
        raise ValueError(
            f"Cohere's v1 chat API is not supported with {', '.join(used)}; use the default "
            'api_version="v2" (CohereProvider(model, api_version="v2")).'
        )


class _CohereV2Stream:
    __slots__ = ("calls", "done", "model", "plan", "provider")

    def __init__(self, provider: str, model: str) -> None:
        self.provider = provider
        self.model = model
        self.done = False
        self.calls = ToolCallParts(provider)
        self.plan: list[str] = []

    def feed(self, event: SSEEvent) -> list[StreamChunk]:
        if not event.data or event.data == "[DONE]":
            return []
        payload = parse_json_line(self.provider, event.data)
        if not isinstance(payload, dict):
            raise inband_error(self.provider, f"unexpected stream data {event.data[:200]!r}")
        kind = payload.get("type") or event.event
        if kind == "content-delta":
            content = ((payload.get("delta") or {}).get("message") or {}).get("content") or {}
            thought = content.get("thinking")
            if thought:
                return [reasoning_chunk(thought, self.model)]
            text = content.get("text")
            return [StreamChunk(text, None, self.model)] if text else []
        if kind in ("tool-call-start", "tool-call-delta"):
            message = (payload.get("delta") or {}).get("message") or {}
            call = message.get("tool_calls") or {}
            function = call.get("function") or {}
            self.calls.add(
                payload.get("index", 0),
                id=call.get("id"),
                name=function.get("name"),
                piece=function.get("arguments"),
            )
            return []
        if kind == "tool-plan-delta":  # neither answer nor thinking: kept in metadata
            message = (payload.get("delta") or {}).get("message") or {}
            plan = message.get("tool_plan")
            if isinstance(plan, str):
                self.plan.append(plan)
            return []
        if kind == "message-end":
            delta = payload.get("delta") or {}
            finish = delta.get("finish_reason")
            error = delta.get("error")
            if error or finish in _ERRORS:
                raise inband_error(self.provider, str(error or f"finish_reason {finish}"))
            self.done = True
            return [
                final_chunk(
                    finish,
                    _usage(delta.get("usage")),
                    self.model,
                    self.calls,
                    tool_plan="".join(self.plan) or None,
                )
            ]
        if kind == "error" or (payload.get("message") and not kind):
            raise inband_error(self.provider, str(payload.get("message") or payload))
        return []

    def end(self) -> list[StreamChunk]:
        raise truncated(self.provider)


class _CohereV1Stream:
    __slots__ = ("done", "model", "provider")

    def __init__(self, provider: str, model: str) -> None:
        self.provider = provider
        self.model = model
        self.done = False

    def feed(self, record: bytes) -> list[StreamChunk]:
        payload = parse_json_line(self.provider, record)
        if not isinstance(payload, dict):
            raise inband_error(self.provider, f"unexpected stream data {record[:200]!r}")
        kind = payload.get("event_type")
        if kind == "text-generation":
            text = payload.get("text")
            return [StreamChunk(text, None, self.model)] if text else []
        if kind == "stream-end":
            finish = payload.get("finish_reason")
            response = payload.get("response") or {}
            if finish in _ERRORS:
                raise inband_error(
                    self.provider, response.get("message") or f"finish_reason {finish}"
                )
            self.done = True
            return [final_chunk(finish, _usage(response.get("meta")), self.model)]
        if kind is None and payload.get("message"):
            raise inband_error(self.provider, str(payload["message"]))
        return []

    def end(self) -> list[StreamChunk]:
        raise truncated(self.provider)
