"""Google Gemini API: `models/{model}:streamGenerateContent?alt=sse` (CRLF-framed SSE that
ends at EOF, no sentinel) and `:generateContent`. A blocked prompt is a chunk with no
candidates and promptFeedback.blockReason."""

from __future__ import annotations

from typing import Any, ClassVar
from urllib.parse import quote

from ..core.base import BaseProvider
from ..core.catalog import ModelInfo
from ..core.defaults import default_model_for
from ..core.errors import APIStatusError, AuthenticationError, ContentFilteredError
from ..core.features import Features, budget_of, take_features
from ..core.http import RequestSpec
from ..core.messages import split_system
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

API_VERSION = "v1beta"
_FINISH = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "MALFORMED_FUNCTION_CALL": "error",
}
# Request fields that live at the top level rather than in generationConfig.
_TOP_LEVEL = {"safetySettings", "tools", "toolConfig", "cachedContent", "labels"}


class GeminiProvider(BaseProvider):
    """Gemini Developer API, x-goog-api-key header."""

    name: ClassVar[str] = "gemini"
    display_name: ClassVar[str] = "Google Gemini"
    env_keys: ClassVar[tuple[str, ...]] = ("GEMINI_API_KEY", "GOOGLE_API_KEY")
    env_base_urls: ClassVar[tuple[str, ...]] = ("GEMINI_BASE_URL", "GOOGLE_GEMINI_BASE_URL")
    default_base_url: ClassVar[str] = "https://generativelanguage.googleapis.com"
    default_model: ClassVar[str] = default_model_for("gemini")
    request_id_headers: ClassVar[tuple[str, ...]] = ("x-goog-request-id", "x-request-id")

    async def list_models(self, *, refresh: bool = False) -> list[ModelInfo]:
        """The models this key can use (every page of GET /v1beta/models), cached per process."""
        return await listing.list_models(self, refresh=refresh)

    def auth_headers(self) -> dict[str, str]:
        return {"x-goog-api-key": self._api_key} if self._api_key else {}

    def build_request(
        self, messages: list[Message], system: str | None, stream: bool, params: dict[str, Any]
    ) -> RequestSpec:
        system_text, turns = split_system(messages, system)
        body: dict[str, Any] = {"contents": gemini_contents(turns)}
        if system_text:
            body["systemInstruction"] = {"parts": [{"text": system_text}]}
        extra = dict(params)
        features = take_features(extra)
        config: dict[str, Any] = dict(extra.pop("generationConfig", None) or {})
        self._add_features(body, config, features)
        put_if(config, "temperature", extra.pop("temperature", None))
        put_if(config, "maxOutputTokens", extra.pop("max_tokens", None))
        put_if(config, "topP", extra.pop("top_p", None))
        stop = extra.pop("stop", None)
        if stop is not None:
            config["stopSequences"] = [stop] if isinstance(stop, str) else list(stop)
        for key, value in extra.items():
            (body if key in _TOP_LEVEL else config)[key] = value
        if config:
            body["generationConfig"] = config
        model = quote(self.model, safe="")
        if stream:
            return RequestSpec(
                "POST",
                f"/{API_VERSION}/models/{model}:streamGenerateContent",
                json=body,
                params={"alt": "sse"},
            )
        return RequestSpec("POST", f"/{API_VERSION}/models/{model}:generateContent", json=body)

    def _add_features(
        self, body: dict[str, Any], config: dict[str, Any], features: Features
    ) -> None:
        if features.tools:
            body["tools"] = [
                {
                    "functionDeclarations": [
                        {
                            "name": t.name,
                            "description": t.description,
                            "parametersJsonSchema": t.params,
                        }
                        for t in features.tools
                    ]
                }
            ]
        if isinstance(features.tool_choice, dict):
            body["toolConfig"] = features.tool_choice
        if features.schema is not None:
            config["responseMimeType"] = "application/json"
            config["responseJsonSchema"] = features.schema.schema
        if features.reasoning is not None:
            thinking: dict[str, Any] = {"includeThoughts": True}
            if self.model.startswith("gemini-3") and isinstance(features.reasoning, str):
                thinking["thinkingLevel"] = "low" if features.reasoning in _LOW else "high"
            else:
                thinking["thinkingBudget"] = budget_of(features.reasoning)
            config["thinkingConfig"] = thinking

    def parse_response(self, payload: Any) -> Parsed:
        state = _GeminiStream(self.name, self.model)
        chunks = state.take(payload)
        final = state.end()[0]
        return Parsed(
            content="".join(c.content for c in chunks),
            raw_finish_reason=final.finish_reason,
            usage=final.usage or Usage(),
            model=final.model,
            metadata={k: v for k, v in (final.metadata or {}).items() if k != "raw_finish_reason"},
            tool_calls=list(final.tool_calls or ()),
            reasoning="".join(c.reasoning or "" for c in chunks) or None,
        )

    def normalize_finish(self, raw: str | None) -> str | None:
        return None if raw is None else _FINISH.get(raw, "other")

    def error_class(self, status: int, payload: Any) -> type[APIStatusError]:
        """Gemini answers a wrong key with 400 INVALID_ARGUMENT, reason API_KEY_INVALID."""
        err = payload.get("error") if isinstance(payload, dict) else None
        if isinstance(err, dict):
            reasons = {d.get("reason") for d in err.get("details") or () if isinstance(d, dict)}
            if "API_KEY_INVALID" in reasons or "API key not valid" in str(err.get("message")):
                return AuthenticationError
        return super().error_class(status, payload)

    def stream_mapper(self) -> _GeminiStream:
        return _GeminiStream(self.name, self.model)


_LOW = ("minimal", "low")


def gemini_contents(turns: list[Message]) -> list[dict[str, Any]]:
    """Contents in Gemini's form: images as inlineData (fileData for URLs), calls as
    functionCall parts (with their thoughtSignature), results as functionResponse parts
    of one user turn."""
    out: list[dict[str, Any]] = []
    names = {c.id: c.name for m in turns for c in m.tool_calls}  # a result may omit its name
    for m in turns:
        if m.role == "tool":
            key = "error" if m.is_error else "result"
            name = m.name or names.get(m.tool_call_id or "", "")
            response: dict[str, Any] = {"name": name, "response": {key: m.text}}
            if m.tool_call_id and not m.tool_call_id.startswith("call_"):
                response["id"] = m.tool_call_id
            part = {"functionResponse": response}
            if out and out[-1].get("_results"):
                out[-1]["parts"].append(part)
            else:
                out.append({"role": "user", "parts": [part], "_results": True})
            continue
        parts: list[dict[str, Any]] = []
        for p in m.parts:
            if isinstance(p, str):
                parts.append({"text": p})
            elif p.data is None:
                parts.append({"fileData": {"mimeType": p.media_type, "fileUri": p.url}})
            else:
                parts.append({"inlineData": {"mimeType": p.media_type, "data": p.base64}})
        for call in m.tool_calls:
            fc: dict[str, Any] = {"name": call.name, "args": call.arguments}
            if not call.id.startswith("call_"):
                fc["id"] = call.id
            part = {"functionCall": fc}
            put_if(part, "thoughtSignature", (call.metadata or {}).get("thoughtSignature"))
            parts.append(part)
        if not parts:
            parts.append({"text": ""})
        out.append({"role": "model" if m.role == "assistant" else "user", "parts": parts})
    for item in out:
        item.pop("_results", None)
    return out


class _GeminiStream:
    __slots__ = ("calls", "done", "finish", "model", "ncalls", "provider", "seen", "usage")

    def __init__(self, provider: str, model: str) -> None:
        self.provider = provider
        self.model = model
        self.done = False  # Gemini has no sentinel: the stream ends at EOF
        self.finish: str | None = None
        self.usage: Usage | None = None
        self.calls = ToolCallParts(provider)
        self.ncalls = 0
        self.seen = False

    def feed(self, event: SSEEvent) -> list[StreamChunk]:
        if not event.data:
            return []
        return self.take(parse_json_line(self.provider, event.data))

    def take(self, payload: Any) -> list[StreamChunk]:
        if not isinstance(payload, dict):
            raise inband_error(self.provider, f"unexpected stream data {str(payload)[:200]!r}")
        if payload.get("error"):
            err = payload["error"]
            raise inband_error(
                self.provider, err.get("message", str(err)), err.get("status"), err.get("code")
            )
        self.seen = True
        meta = payload.get("usageMetadata")
        if meta:
            self.usage = Usage.of(
                meta.get("promptTokenCount"),
                (meta.get("candidatesTokenCount") or 0) + (meta.get("thoughtsTokenCount") or 0),
            )
        self.model = payload.get("modelVersion") or self.model
        candidates = payload.get("candidates")
        if not candidates:
            feedback = payload.get("promptFeedback") or {}
            reason = feedback.get("blockReason")
            if reason:
                raise ContentFilteredError(
                    f"the prompt was blocked ({reason}). Rephrase the prompt or adjust "
                    "safetySettings.",
                    provider=self.provider,
                    provider_message=feedback.get("blockReasonMessage") or reason,
                )
            return []
        candidate = candidates[0]
        out: list[StreamChunk] = []
        for part in (candidate.get("content") or {}).get("parts") or ():
            call = part.get("functionCall")
            if call is not None:  # arrives whole, usually without an id
                signature = part.get("thoughtSignature")
                self.calls.add(
                    self.ncalls,
                    id=call.get("id"),
                    name=call.get("name"),
                    whole=call.get("args") or {},
                    metadata={"thoughtSignature": signature} if signature else None,
                )
                self.ncalls += 1
                continue
            text = part.get("text")
            if not text:
                continue
            if part.get("thought"):
                out.append(reasoning_chunk(text, self.model))
            else:
                out.append(StreamChunk(text, None, self.model))
        if candidate.get("finishReason"):
            self.finish = candidate["finishReason"]
        return out

    def end(self) -> list[StreamChunk]:
        if not self.seen or self.finish is None:
            raise truncated(self.provider)
        self.done = True
        return [final_chunk(self.finish, self.usage, self.model, self.calls)]
