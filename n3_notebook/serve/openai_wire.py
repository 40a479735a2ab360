"""OpenAI Chat Completions on the wire, as the gateway writes it (the same format the
emulator speaks, emulator/formats/openai.py): the request model, the `chat.completion` body,
the `chat.completion.chunk` events of a stream (`data:` lines only, a first chunk with the
role, one per read of text, a last one with the finish reason, with
`stream_options.include_usage` a chunk with `choices: []` and the usage, then
`data: [DONE]`), and errors in OpenAI's shape:

    {"error": {"message": "...", "type": "invalid_request_error", "param": null, "code": "..."}}
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ..core.types import ToolCall, Usage
from .errors import ServeError
from .sse import dumps

CHAT_ROUTE = "/v1/chat/completions"
DONE = b"data: [DONE]\n\n"
#: OpenAI's finish reasons; anything else a provider reports is written as "stop".
FINISH_REASONS = frozenset({"stop", "length", "content_filter", "tool_calls"})
#: OpenAI's error `type` by HTTP status.
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "invalid_request_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "requests",
}
#: The `role`s a message may have (`developer` is OpenAI's newer name for `system`).
ROLES = {
    "system": "system",
    "developer": "system",
    "user": "user",
    "assistant": "assistant",
    "tool": "tool",
}


class ChatMessage(BaseModel):
    """One message; content is text or a list of parts ({"type": "text", "text": ...},
    {"type": "image_url", "image_url": {"url": ...}}); an assistant turn may carry its
    tool_calls, a `tool` turn answers one (tool_call_id)."""

    model_config = ConfigDict(extra="allow")
    role: str = Field(max_length=32)
    content: str | list[dict[str, Any]] | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = Field(None, max_length=200)
    name: str | None = Field(None, max_length=200)


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")
    include_usage: bool | None = False


class ChatCompletionRequest(BaseModel):
    """The body of POST /v1/chat/completions. Unknown fields are accepted and ignored, as
    OpenAI-compatible servers do; n must be 1."""

    model_config = ConfigDict(extra="allow")
    model: str = Field(min_length=1, max_length=200)
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    stop: str | list[str] | None = None
    n: int | None = Field(None, ge=1, le=1)
    tools: list[dict[str, Any]] | None = None
    response_format: dict[str, Any] | None = None
    n3_cache: bool | None = None  # our extension: answer from the response cache


class ModelCard(BaseModel):
    id: str
    object: str = "model"
    created: int
    owned_by: str


class ModelList(BaseModel):
    object: str = "list"
    data: list[ModelCard]


class OpenAIErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class OpenAIErrorResponse(BaseModel):
    error: OpenAIErrorDetail


def error_body(err: ServeError) -> dict[str, Any]:
    """An error in OpenAI's shape (the service's type becomes the `code`)."""
    kind = ERROR_TYPES.get(err.status, "server_error" if err.status >= 500 else "api_error")
    param = err.extra.get("param")
    return {
        "error": {
            "message": err.message,
            "type": kind,
            "param": param if isinstance(param, str) else None,
            "code": err.type,
        }
    }


def completion_id() -> str:
    return f"chatcmpl-{secrets.token_urlsafe(21)}"


def finish_reason(reason: str | None) -> str:
    return reason if reason in FINISH_REASONS else "stop"


def usage_body(usage: Usage) -> dict[str, int]:
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.input_tokens + usage.output_tokens,
    }


def tool_calls_body(calls: list[ToolCall], indexed: bool = False) -> list[dict[str, Any]]:
    """Tool calls as OpenAI writes them (arguments a JSON string; in a stream, indexed)."""
    out = []
    for i, call in enumerate(calls):
        item: dict[str, Any] = {
            "id": call.id,
            "type": "function",
            "function": {"name": call.name, "arguments": dumps(call.arguments).decode()},
        }
        if indexed:
            item = {"index": i, **item}
        out.append(item)
    return out


def completion_body(
    cid: str,
    model: str,
    text: str,
    finish: str | None,
    usage: Usage,
    tool_calls: list[ToolCall] | None = None,
) -> dict[str, Any]:
    """A whole `chat.completion`."""
    message: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None}
    if tool_calls:
        message["tool_calls"] = tool_calls_body(tool_calls)
        message["content"] = text or None
        finish = "tool_calls"
    return {
        "id": cid,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": finish_reason(finish),
            }
        ],
        "usage": usage_body(usage),
        "system_fingerprint": None,
    }


class ChunkWriter:
    """The `data:` events of one streamed completion, as bytes."""

    __slots__ = ("_prefix", "_suffix", "cid", "created", "include_usage", "model")

    def __init__(self, cid: str, model: str, include_usage: bool) -> None:
        self.cid = cid
        self.model = model
        self.created = int(time.time())
        self.include_usage = include_usage
        # every content chunk is this prefix, the JSON string of the text, this suffix
        head = dumps(self._chunk({"content": "\x00"}, None))
        cut = head.index(b'"\\u0000"')
        self._prefix = b"data: " + head[:cut]
        self._suffix = head[cut + len(b'"\\u0000"') :] + b"\n\n"

    def _chunk(self, delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
        obj: dict[str, Any] = {
            "id": self.cid,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": None,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if self.include_usage:
            obj["usage"] = None
        return obj

    def role(self) -> bytes:
        return b"data: %s\n\n" % dumps(self._chunk({"role": "assistant", "content": ""}, None))

    def text(self, text: str) -> bytes:
        return self._prefix + dumps(text) + self._suffix

    def end(
        self, finish: str | None, usage: Usage, tool_calls: list[ToolCall] | None = None
    ) -> bytes:
        out = b""
        if tool_calls:  # the provider core hands them over whole, on the final chunk
            delta = {"tool_calls": tool_calls_body(tool_calls, indexed=True)}
            out += b"data: %s\n\n" % dumps(self._chunk(delta, None))
            finish = "tool_calls"
        out += b"data: %s\n\n" % dumps(self._chunk({}, finish_reason(finish)))
        if self.include_usage:
            tail = {
                "id": self.cid,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self.model,
                "system_fingerprint": None,
                "choices": [],
                "usage": usage_body(usage),
            }
            out += b"data: %s\n\n" % dumps(tail)
        return out + DONE


def error_event(err: ServeError) -> bytes:
    """An error after the stream began: one `data:` event with OpenAI's error object (the
    openai SDK raises it as an APIError)."""
    return b"data: %s\n\n" % dumps(error_body(err))


__all__ = [
    "CHAT_ROUTE",
    "DONE",
    "ERROR_TYPES",
    "ROLES",
    "ChatCompletionRequest",
    "ChatMessage",
    "ChunkWriter",
    "ModelCard",
    "ModelList",
    "OpenAIErrorResponse",
    "completion_body",
    "completion_id",
    "error_body",
    "error_event",
    "finish_reason",
    "tool_calls_body",
    "usage_body",
]
