"""Ollama's native API: NDJSON on /api/chat and /api/generate; the last line has
`done: true` with done_reason, token counts and durations in ns; an error after the body
started is a line `{"error": "..."}` under status 200. Also /api/tags and /api/pull."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, ClassVar

import httpx

from ..core.base import BaseProvider
from ..core.catalog import ModelInfo, forget_models
from ..core.defaults import default_model_for
from ..core.errors import APIConnectionError
from ..core.features import Features, take_features
from ..core.http import RequestSpec
from ..core.snippets import parse_json_line
from ..core.types import Message, StreamChunk, Usage
from ..wire import NDJSONDecoder
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
from .openai import function_tools

DEFAULT_HOST = "http://127.0.0.1:11434"
_FINISH = {"stop": "stop", "length": "length"}
# Request fields that sit at the top level; anything else goes into `options`.
_TOP_LEVEL = {"format", "keep_alive", "think", "tools", "template", "raw", "images", "context"}
_DURATIONS = ("total_duration", "load_duration", "prompt_eval_duration", "eval_duration")


def normalize_host(host: str) -> str:
    """OLLAMA_HOST may be `0.0.0.0:11434` or `host` without a scheme or port."""
    host = host.strip().rstrip("/")
    if "://" not in host:
        host = "http://" + host
    scheme, rest = host.split("://", 1)
    hostport = rest.split("/", 1)[0]
    if hostport.startswith("0.0.0.0"):  # nosec B104  # a bind-all OLLAMA_HOST: use loopback
        rest = rest.replace("0.0.0.0", "127.0.0.1", 1)  # nosec B104  # likewise
        hostport = rest.split("/", 1)[0]
    if ":" not in hostport.rsplit("]", 1)[-1]:
        rest = rest.replace(hostport, hostport + ":11434", 1)
    return f"{scheme}://{rest}"


class OllamaProvider(BaseProvider):
    """A local (or remote) Ollama server; no key. api="chat" (default) or "generate"."""

    name: ClassVar[str] = "ollama"
    display_name: ClassVar[str] = "Ollama"
    env_keys: ClassVar[tuple[str, ...]] = ("OLLAMA_API_KEY",)
    env_base_urls: ClassVar[tuple[str, ...]] = ("OLLAMA_HOST",)
    default_base_url: ClassVar[str] = DEFAULT_HOST
    default_model: ClassVar[str] = default_model_for("ollama")
    requires_key: ClassVar[bool] = False
    framing: ClassVar[str] = "ndjson"
    unreachable_hint: ClassVar[str] = (
        "Is Ollama running? Start it with `ollama serve`, or point OLLAMA_HOST at it."
    )

    def __init__(self, model: str | None = None, *, api: str = "chat", **kwargs: Any) -> None:
        if api not in ("chat", "generate"):
            raise ValueError(f'api must be "chat" or "generate", got {api!r}')
        self.api = api
        super().__init__(model, **kwargs)
        self.base_url = normalize_host(self.base_url)

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}

    def build_request(
        self, messages: list[Message], system: str | None, stream: bool, params: dict[str, Any]
    ) -> RequestSpec:
        extra = dict(params)
        features = take_features(extra)
        options: dict[str, Any] = dict(extra.pop("options", None) or {})
        put_if(options, "temperature", extra.pop("temperature", None))
        put_if(options, "num_predict", extra.pop("max_tokens", None))
        put_if(options, "top_p", extra.pop("top_p", None))
        stop = extra.pop("stop", None)
        if stop is not None:
            options["stop"] = [stop] if isinstance(stop, str) else list(stop)
        body: dict[str, Any] = {"model": self.model, "stream": stream}
        if self.api == "chat":
            msgs = [{"role": "system", "content": system}] if system else []
            msgs.extend(ollama_message(m) for m in messages)
            body["messages"] = msgs
        else:
            if features.tools or any(m.role == "tool" or m.tool_calls for m in messages):
                raise ValueError(
                    'Ollama\'s /api/generate has no tools; use OllamaProvider(model, api="chat")'
                )
            sys_parts = [system] if system else []
            sys_parts += [m.text for m in messages if m.role == "system"]
            body["prompt"] = "\n\n".join(m.text for m in messages if m.role != "system")
            if sys_parts:
                body["system"] = "\n\n".join(sys_parts)
            images = [i.base64 for m in messages for i in m.images]
            if images:
                body["images"] = images
        self._add_features(body, features)
        for key, value in extra.items():
            if key in _TOP_LEVEL:
                body[key] = value
            else:
                options[key] = value
        if options:
            body["options"] = options
        return RequestSpec("POST", f"/api/{self.api}", json=body)

    def _add_features(self, body: dict[str, Any], features: Features) -> None:
        if features.tools:
            body["tools"] = function_tools(features)
        if features.schema is not None:
            body["format"] = features.schema.schema
        if features.reasoning is not None:
            levels = self.model.startswith("gpt-oss") and isinstance(features.reasoning, str)
            effort = "low" if features.reasoning == "minimal" else features.reasoning
            body["think"] = effort if levels else True

    def parse_response(self, payload: Any) -> Parsed:
        if isinstance(payload, dict) and payload.get("error"):
            raise inband_error(self.name, str(payload["error"]))
        state = _OllamaStream(self.name, self.model)
        chunks = state.take(payload)
        final = chunks[-1] if chunks and chunks[-1].finish_reason else state.end()[0]
        text = "".join(c.content for c in chunks)
        meta = {k: v for k, v in (final.metadata or {}).items() if k != "raw_finish_reason"}
        return Parsed(
            text,
            final.finish_reason,
            final.usage or Usage(),
            final.model,
            meta,
            list(final.tool_calls or ()),
            "".join(c.reasoning or "" for c in chunks) or None,
        )

    def normalize_finish(self, raw: str | None) -> str | None:
        return None if raw is None else _FINISH.get(raw, "other")

    def stream_mapper(self) -> _OllamaStream:
        return _OllamaStream(self.name, self.model)

    async def list_models(self, *, refresh: bool = False) -> list[ModelInfo]:
        """The models the server has (GET /api/tags); each also reads like Ollama's own
        entry (info["name"], info["details"])."""
        return await listing.list_models(self, refresh=refresh)

    async def pull_model(self, name: str) -> AsyncIterator[dict[str, Any]]:
        """Download a model (POST /api/pull), yielding Ollama's progress dicts.

        An `{"error": ...}` line raises; leaving early closes the connection."""
        response = await self._open(
            RequestSpec("POST", "/api/pull", json={"model": name, "stream": True}), None
        )
        decoder = NDJSONDecoder()
        try:
            async for data in response.aiter_bytes():
                for record in decoder.feed(data):
                    yield _progress(self.name, record)
            for record in decoder.flush():
                yield _progress(self.name, record)
            forget_models(self.name, self.base_url, self._api_key)  # the listing changed
        except httpx.HTTPError as exc:
            raise APIConnectionError(
                f"the connection broke while pulling {name!r}", provider=self.name
            ) from exc
        finally:
            await response.aclose()


def _progress(provider: str, record: bytes) -> dict[str, Any]:
    payload = parse_json_line(provider, record)
    if isinstance(payload, dict) and payload.get("error"):
        raise inband_error(provider, str(payload["error"]))
    progress: dict[str, Any] = payload
    return progress


def ollama_message(m: Message) -> dict[str, Any]:
    """A message of /api/chat: text content, images as bare base64, calls with their
    arguments as objects, a tool result naming its tool."""
    out: dict[str, Any] = {"role": m.role, "content": m.text}
    if m.images:
        out["images"] = [i.base64 for i in m.images]
    if m.tool_calls:
        out["tool_calls"] = [
            {"function": {"name": c.name, "arguments": c.arguments}} for c in m.tool_calls
        ]
    if m.role == "tool":
        put_if(out, "tool_name", m.name)
    return out


class _OllamaStream:
    __slots__ = ("calls", "done", "model", "provider")

    def __init__(self, provider: str, model: str) -> None:
        self.provider = provider
        self.model = model
        self.done = False
        self.calls = ToolCallParts(provider)

    def feed(self, record: bytes) -> list[StreamChunk]:
        return self.take(parse_json_line(self.provider, record))

    def take(self, payload: Any) -> list[StreamChunk]:
        if not isinstance(payload, dict):
            raise inband_error(self.provider, f"unexpected stream data {str(payload)[:200]!r}")
        if payload.get("error"):
            raise inband_error(self.provider, str(payload["error"]))
        message = payload.get("message")
        if message is not None:
            text = message.get("content")
            thought = message.get("thinking")
            for call in message.get("tool_calls") or ():  # whole, arguments an object
                function = call.get("function") or {}
                self.calls.add(
                    len(self.calls.calls),
                    id=call.get("id"),
                    name=function.get("name"),
                    piece=function.get("arguments"),
                )
        else:
            text = payload.get("response")
            thought = payload.get("thinking")
        out = [reasoning_chunk(thought, self.model)] if thought else []
        if text:
            out.append(StreamChunk(text, None, self.model))
        if payload.get("done"):
            self.done = True
            extra = {k: payload[k] for k in _DURATIONS if k in payload}
            out.append(
                final_chunk(
                    payload.get("done_reason") or "stop",
                    Usage.of(payload.get("prompt_eval_count"), payload.get("eval_count")),
                    payload.get("model") or self.model,
                    self.calls,
                    **extra,
                )
            )
        return out

    def end(self) -> list[StreamChunk]:
        raise truncated(self.provider)
