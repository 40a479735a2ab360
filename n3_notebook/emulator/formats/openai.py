"""OpenAI Chat Completions: ``POST /v1/chat/completions`` and ``GET /v1/models``.

Stream: ``data: <chat.completion.chunk>`` events (no ``event:`` lines) -- a first chunk
with ``delta.role``, one chunk per content token, a chunk with an empty delta and the
``finish_reason``, with ``stream_options.include_usage`` a chunk with ``choices: []`` and
the ``usage`` (every other chunk then carries ``"usage": null``), then ``data: [DONE]``.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ..models import EMULATOR_MODELS
from ..streaming import StreamPlan
from ..text import Answer
from .base import (
    STATUS_OF_KIND,
    BadRequest,
    ChatRequest,
    Context,
    ErrorKind,
    ProviderFormat,
    as_int,
    as_stops,
    data_url_image,
    json_response,
    random_id,
    sse,
)

_FINISH = {"stop": "stop", "length": "length", "tool_calls": "tool_calls"}
_FINGERPRINT = "fp_n3emu0001"

_MISSING_KEY = (
    "You didn't provide an API key. You need to provide your API key in an Authorization "
    "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password "
    "field (with blank username) if you're accessing the API from your browser and are "
    "prompted for a username and password. You can obtain an API key from "
    "https://platform.openai.com/account/api-keys."
)


def _redacted(key: str | None) -> str:
    if not key or len(key) < 12:
        return "***"
    return f"{key[:3]}{'*' * (len(key) - 7)}{key[-4:]}"


def _content_text(content: Any) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                parts.append(part["text"])
            elif isinstance(part, str):
                parts.append(part)
        return "\n".join(parts)
    raise BadRequest("messages: content must be a string or an array of parts", param="messages")


def _images(content: Any) -> list[tuple[str, int | None]]:
    if not isinstance(content, list):
        return []
    return [
        data_url_image((part.get("image_url") or {}).get("url"))
        for part in content
        if isinstance(part, dict) and part.get("type") == "image_url"
    ]


def function_tools(raw: Any) -> list[dict[str, Any]]:
    """[{"type": "function", "function": {name, parameters}}] (OpenAI, Cohere v2, Ollama)."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise BadRequest("tools: expected an array", param="tools")
    out = []
    for item in raw:
        function = item.get("function") if isinstance(item, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise BadRequest("tools: each tool needs function.name", param="tools")
        out.append({"name": function["name"], "parameters": function.get("parameters") or {}})
    return out


def _schema(fmt: Any) -> dict[str, Any] | None:
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        schema = (fmt.get("json_schema") or {}).get("schema")
        return schema if isinstance(schema, dict) else {}
    return None


def call_id(key: str) -> str:
    return f"call_{key}"


class OpenAIFormat(ProviderFormat):
    name = "openai"

    def parse(self, body: Any, request: Request, path_model: str | None) -> ChatRequest:
        if not isinstance(body, dict):
            raise BadRequest("We could not parse the JSON body of your request.")
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise BadRequest("you must provide a model parameter", param="model")
        raw_messages = body.get("messages")
        if not isinstance(raw_messages, list) or not raw_messages:
            raise BadRequest("[] is too short - 'messages'", param="messages")
        messages = []
        images: list[tuple[str, int | None]] = []
        for item in raw_messages:
            if not isinstance(item, dict) or "role" not in item:
                raise BadRequest(
                    "Invalid value for 'messages': expected objects with 'role'.", param="messages"
                )
            text = _content_text(item.get("content"))
            messages.append({"role": str(item["role"]), "content": text})
            images.extend(_images(item.get("content")))
        max_tokens = as_int(body.get("max_completion_tokens"), "max_completion_tokens")
        if max_tokens is None:
            max_tokens = as_int(body.get("max_tokens"), "max_tokens")
        stream_options = body.get("stream_options") or {}
        include_usage = bool(
            isinstance(stream_options, dict) and stream_options.get("include_usage")
        )
        return ChatRequest(
            model=model,
            messages=messages,
            max_tokens=max_tokens,
            stop=as_stops(body.get("stop"), "stop"),
            stream=bool(body.get("stream", False)),
            options={"include_usage": include_usage},
            tools=function_tools(body.get("tools")),
            schema=_schema(body.get("response_format")),
            reasoning=bool(body.get("reasoning_effort")),
            images=images,
        )

    def new_request_id(self) -> str:
        return f"req_{random_id(32, '0123456789abcdef')}"

    def prepare(self, ctx: Context, chat: ChatRequest) -> None:
        super().prepare(ctx, chat)
        ctx.options["completion_id"] = f"chatcmpl-{random_id(29)}"

    def response_headers(self, ctx: Context) -> dict[str, str]:
        return {
            "x-request-id": ctx.request_id,
            "openai-processing-ms": str(int(ctx.pacing.first_token_delay * 1000)),
            "openai-version": "2020-10-01",
        }

    def rate_limit_headers(self, ctx: Context) -> dict[str, str]:
        return {
            "retry-after": "0",
            "retry-after-ms": "10",
            "x-ratelimit-limit-requests": "500",
            "x-ratelimit-remaining-requests": "0",
            "x-ratelimit-reset-requests": "10ms",
            "x-ratelimit-limit-tokens": "200000",
            "x-ratelimit-remaining-tokens": "199000",
            "x-ratelimit-reset-tokens": "300ms",
        }

    def error(
        self,
        kind: ErrorKind,
        ctx: Context,
        message: str | None = None,
        *,
        status: int | None = None,
        key: str | None = None,
    ) -> Response:
        etype, code, param = "invalid_request_error", None, None
        if kind == "auth_missing":
            message = _MISSING_KEY
        elif kind == "auth_invalid":
            message = (
                f"Incorrect API key provided: {_redacted(key)}. You can find your API key at "
                "https://platform.openai.com/account/api-keys."
            )
            code = "invalid_api_key"
        elif kind == "not_found":
            message = f"The model `{ctx.model}` does not exist or you do not have access to it."
            code = "model_not_found"
        elif kind == "rate_limit":
            message = (
                f"Rate limit reached for {ctx.model} in organization org-n3emulator on "
                "requests per min (RPM): Limit 500, Used 500, Requested 1. Please try again "
                "in 10ms. Visit https://platform.openai.com/account/rate-limits to learn more."
            )
            etype, code = "requests", "rate_limit_exceeded"
        elif kind == "server_error":
            message = message or (
                "The server had an error while processing your request. Sorry about that!"
            )
            etype = "server_error"
        elif kind in ("unavailable", "overloaded"):
            message = "The engine is currently overloaded, please try again later."
            etype = "server_error"
        headers = self.response_headers(ctx)
        if kind == "rate_limit":
            headers.update(self.rate_limit_headers(ctx))
        body = {"error": {"message": message, "type": etype, "param": param, "code": code}}
        return json_response(body, status or STATUS_OF_KIND[kind], headers)

    # -- bodies --------------------------------------------------------------------
    def _finish(self, answer: Answer, ctx: Context) -> str:
        return "content_filter" if ctx.blocked else _FINISH[answer.finish_reason]

    def _usage(self, answer: Answer, ctx: Context) -> dict[str, Any]:
        completion = 0 if ctx.blocked else answer.output_tokens
        return {
            "prompt_tokens": answer.input_tokens,
            "completion_tokens": completion,
            "total_tokens": answer.input_tokens + completion,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": len(answer.thinking),
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }

    def complete(self, answer: Answer, ctx: Context) -> Any:
        message: dict[str, Any] = {
            "role": "assistant",
            "content": "" if ctx.blocked else answer.text,
            "refusal": None,
            "annotations": [],
        }
        if answer.thinking:
            message["reasoning_content"] = "".join(answer.thinking)
        if answer.tool_calls:
            message["content"] = None
            message["tool_calls"] = [
                {
                    "id": call_id(c.key),
                    "type": "function",
                    "function": {"name": c.name, "arguments": c.arguments_json},
                }
                for c in answer.tool_calls
            ]
        return {
            "id": ctx.options["completion_id"],
            "object": "chat.completion",
            "created": ctx.created,
            "model": ctx.model,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": self._finish(answer, ctx),
                }
            ],
            "usage": self._usage(answer, ctx),
            "service_tier": "default",
            "system_fingerprint": _FINGERPRINT,
        }

    def plan(self, answer: Answer, ctx: Context) -> StreamPlan:
        include_usage = bool(ctx.options.get("include_usage"))

        def chunk(delta: dict[str, Any], finish: str | None) -> bytes:
            obj: dict[str, Any] = {
                "id": ctx.options["completion_id"],
                "object": "chat.completion.chunk",
                "created": ctx.created,
                "model": ctx.model,
                "service_tier": "default",
                "system_fingerprint": _FINGERPRINT,
                "choices": [
                    {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
                ],
            }
            if include_usage:
                obj["usage"] = None
            return sse(obj)

        tokens = [] if ctx.blocked else answer.tokens
        tail = [chunk({}, self._finish(answer, ctx))]
        if include_usage:
            tail.append(
                sse(
                    {
                        "id": ctx.options["completion_id"],
                        "object": "chat.completion.chunk",
                        "created": ctx.created,
                        "model": ctx.model,
                        "service_tier": "default",
                        "system_fingerprint": _FINGERPRINT,
                        "choices": [],
                        "usage": self._usage(answer, ctx),
                    }
                )
            )
        tail.append(b"data: [DONE]\n\n")
        error = {
            "error": {
                "message": "The server had an error while processing your request. "
                "Sorry about that!",
                "type": "server_error",
                "param": None,
                "code": None,
            }
        }
        frames = [chunk({"reasoning_content": t}, None) for t in answer.thinking]
        frames += [chunk({"content": token}, None) for token in tokens]
        for index, call in enumerate(answer.tool_calls):
            first = {
                "index": index,
                "id": call_id(call.key),
                "type": "function",
                "function": {"name": call.name, "arguments": ""},
            }
            frames.append(chunk({"tool_calls": [first]}, None))
            frames += [
                chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}, None)
                for piece in call.pieces
            ]
        return StreamPlan(
            head=[chunk({"role": "assistant", "content": "", "refusal": None}, None)],
            tokens=frames,
            tail=tail,
            error=[sse(error)],
            malformed=b'data: {"choices": [tr\n\n',
        )

    def models_list(self) -> Response:
        data = [
            {"id": name, "object": "model", "created": 1715367049, "owned_by": "system"}
            for name in EMULATOR_MODELS["openai"]
        ]
        return json_response({"object": "list", "data": data})

    def model_info(self, name: str, ctx: Context) -> Response:
        if name not in EMULATOR_MODELS["openai"]:
            return self.error("not_found", ctx)
        return json_response(
            {"id": name, "object": "model", "created": 1715367049, "owned_by": "system"}
        )
