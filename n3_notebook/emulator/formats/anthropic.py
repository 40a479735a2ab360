"""Anthropic Messages: ``POST /v1/messages`` (and ``GET /v1/models``).

Stream: named SSE events -- ``message_start`` (usage.input_tokens, output_tokens 1),
``content_block_start``, ``ping``, one ``content_block_delta`` (``text_delta``) per token,
``content_block_stop``, ``message_delta`` (stop_reason, stop_sequence, cumulative
usage.output_tokens) and ``message_stop``.  Mid-stream errors are ``event: error``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ..listing import anthropic_page
from ..models import EMULATOR_MODELS, lookup_model
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
    json_response,
    random_id,
    sse,
)

_STOP_REASON = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}

#: The signature of the emulator's thinking blocks (opaque, like the real one).
_SIGNATURE = "EqQBCkYIBxgCKkBuM2VtdWxhdG9yLXNpZ25hdHVyZQ=="

_MESSAGES = {
    "auth_missing": ("authentication_error", "x-api-key header is required"),
    "auth_invalid": ("authentication_error", "invalid x-api-key"),
    "rate_limit": (
        "rate_limit_error",
        "Number of requests has exceeded your per-minute rate limit "
        "(https://docs.anthropic.com/en/api/rate-limits); see the response headers for "
        "current usage. Please try again later.",
    ),
    "server_error": ("api_error", "Internal server error"),
    "unavailable": ("api_error", "Service unavailable"),
    "overloaded": ("overloaded_error", "Overloaded"),
}


def _split_turn(role: str, content: Any, where: str) -> list[dict[str, str]]:
    """One request message as plain turns: tool_result blocks become "tool" turns."""
    if not isinstance(content, list):
        return [{"role": role, "content": _text_of(content, where)}]
    out = []
    for block in content:
        if isinstance(block, dict) and block.get("type") == "tool_result":
            out.append({"role": "tool", "content": _text_of(block.get("content") or "", where)})
    rest = [b for b in content if not (isinstance(b, dict) and b.get("type") == "tool_result")]
    if rest or not out:
        out.append({"role": role, "content": _text_of(rest, where)})
    return out


def _images(raw: list[Any]) -> list[tuple[str, int | None]]:
    out: list[tuple[str, int | None]] = []
    for item in raw:
        content = item.get("content") if isinstance(item, dict) else None
        for block in content if isinstance(content, list) else ():
            if isinstance(block, dict) and block.get("type") == "image":
                source = block.get("source") or {}
                data = source.get("data")
                size = len(data) * 3 // 4 if isinstance(data, str) else None
                out.append((str(source.get("media_type") or "image/*"), size))
    return out


def _tools(raw: Any) -> list[dict[str, Any]]:
    if not isinstance(raw, list):
        return []
    return [
        {"name": t["name"], "parameters": t.get("input_schema") or {}}
        for t in raw
        if isinstance(t, dict) and isinstance(t.get("name"), str) and "input_schema" in t
    ]


def _schema(body: dict[str, Any]) -> dict[str, Any] | None:
    fmt = (body.get("output_config") or {}).get("format") or body.get("output_format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        return fmt.get("schema") if isinstance(fmt.get("schema"), dict) else {}
    return None


def _text_of(content: Any, where: str) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for block in content:
            if not isinstance(block, dict) or "type" not in block:
                raise BadRequest(f"{where}: each content block needs a 'type'")
            if block["type"] == "text":
                texts.append(str(block.get("text", "")))
        return "\n".join(texts)
    raise BadRequest(f"{where}: Input should be a valid string or list of content blocks")


class AnthropicFormat(ProviderFormat):
    name = "anthropic"

    def credentials(self, request: Request) -> str | None:
        key = request.headers.get("x-api-key", "").strip()
        return key or super().credentials(request)

    def precheck(self, request: Request) -> tuple[ErrorKind, str] | None:
        if not request.headers.get("anthropic-version"):
            return "bad_request", "anthropic-version: header is required"
        return None

    def parse(self, body: Any, request: Request, path_model: str | None) -> ChatRequest:
        if not isinstance(body, dict):
            raise BadRequest("Input should be an object")
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise BadRequest("model: Field required")
        if "max_tokens" not in body:
            raise BadRequest("max_tokens: Field required")
        max_tokens = as_int(body.get("max_tokens"), "max_tokens")
        raw = body.get("messages")
        if not isinstance(raw, list) or not raw:
            raise BadRequest("messages: Field required")
        messages = []
        for index, item in enumerate(raw):
            if not isinstance(item, dict) or item.get("role") not in ("user", "assistant"):
                raise BadRequest(f"messages.{index}.role: Input should be 'user' or 'assistant'")
            messages.extend(_split_turn(item["role"], item.get("content"), f"messages.{index}"))
        system = body.get("system")
        thinking = body.get("thinking")
        return ChatRequest(
            model=model,
            messages=messages,
            system=_text_of(system, "system") if system is not None else None,
            max_tokens=max_tokens,
            stop=as_stops(body.get("stop_sequences"), "stop_sequences"),
            stream=bool(body.get("stream", False)),
            tools=_tools(body.get("tools")),
            schema=_schema(body),
            reasoning=isinstance(thinking, dict) and thinking.get("type") == "enabled",
            images=_images(raw),
        )

    def new_request_id(self) -> str:
        return f"req_011C{random_id(20)}"

    def prepare(self, ctx: Context, chat: ChatRequest) -> None:
        super().prepare(ctx, chat)
        ctx.options["message_id"] = f"msg_01{random_id(22)}"

    def response_headers(self, ctx: Context) -> dict[str, str]:
        return {"request-id": ctx.request_id, "anthropic-organization-id": "n3-emulator"}

    def rate_limit_headers(self, ctx: Context) -> dict[str, str]:
        reset = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        return {
            "retry-after": "0",
            "anthropic-ratelimit-requests-limit": "50",
            "anthropic-ratelimit-requests-remaining": "0",
            "anthropic-ratelimit-requests-reset": reset,
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
        if kind == "not_found":
            etype, text = "not_found_error", f"model: {ctx.model}"
        elif kind == "bad_request":
            etype, text = "invalid_request_error", message or "invalid request"
        else:
            etype, text = _MESSAGES[kind]
            if kind == "server_error" and message:
                text = message
        headers = self.response_headers(ctx)
        if kind == "rate_limit":
            headers.update(self.rate_limit_headers(ctx))
        if kind == "overloaded":
            headers["x-should-retry"] = "true"
        body = {
            "type": "error",
            "error": {"type": etype, "message": text},
            "request_id": ctx.request_id,
        }
        return json_response(body, status or STATUS_OF_KIND[kind], headers)

    # -- bodies --------------------------------------------------------------------
    def _stop(self, answer: Answer, ctx: Context) -> tuple[str, str | None]:
        if ctx.blocked:
            return "refusal", None
        if answer.stop_sequence is not None:
            return "stop_sequence", answer.stop_sequence
        return _STOP_REASON[answer.finish_reason], None

    def _usage(self, input_tokens: int, output_tokens: int) -> dict[str, Any]:
        return {
            "input_tokens": input_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": output_tokens,
            "service_tier": "standard",
        }

    def _message(
        self,
        ctx: Context,
        content: list[Any],
        stop: tuple[str | None, str | None],
        usage: dict[str, Any],
    ) -> dict[str, Any]:
        return {
            "id": ctx.options["message_id"],
            "type": "message",
            "role": "assistant",
            "model": ctx.model,
            "content": content,
            "stop_reason": stop[0],
            "stop_sequence": stop[1],
            "usage": usage,
        }

    def _blocks(self, answer: Answer) -> list[dict[str, Any]]:
        """The answer's content blocks, complete: thinking, text, tool_use."""
        blocks: list[dict[str, Any]] = []
        if answer.thinking:
            thinking = "".join(answer.thinking)
            blocks.append({"type": "thinking", "thinking": thinking, "signature": _SIGNATURE})
        if answer.text or not answer.tool_calls:
            blocks.append({"type": "text", "text": answer.text})
        for call in answer.tool_calls:
            blocks.append(
                {
                    "type": "tool_use",
                    "id": f"toolu_01{call.key}",
                    "name": call.name,
                    "input": call.arguments,
                }
            )
        return blocks

    def complete(self, answer: Answer, ctx: Context) -> Any:
        output = 0 if ctx.blocked else answer.output_tokens
        content = [] if ctx.blocked else self._blocks(answer)
        return self._message(
            ctx, content, self._stop(answer, ctx), self._usage(answer.input_tokens, output)
        )

    def _block_frames(self, answer: Answer) -> list[bytes]:
        """Every block streamed: start glued to its first delta, stop to its last."""

        def event(obj: dict[str, Any]) -> bytes:
            return sse(obj, obj["type"])

        frames: list[bytes] = []
        for index, block in enumerate(self._blocks(answer)):
            kind = block["type"]
            start: dict[str, Any]
            deltas: list[dict[str, Any]]
            if kind == "thinking":
                start = {"type": "thinking", "thinking": ""}
                deltas = [{"type": "thinking_delta", "thinking": t} for t in answer.thinking]
                deltas.append({"type": "signature_delta", "signature": _SIGNATURE})
            elif kind == "text":
                start = {"type": "text", "text": ""}
                deltas = [{"type": "text_delta", "text": t} for t in answer.tokens]
            else:
                start = {**block, "input": {}}
                call = next(c for c in answer.tool_calls if block["id"].endswith(c.key))
                deltas = [{"type": "input_json_delta", "partial_json": ""}]
                deltas += [{"type": "input_json_delta", "partial_json": p} for p in call.pieces]
            out = [
                event({"type": "content_block_delta", "index": index, "delta": d}) for d in deltas
            ] or [b""]
            out[0] = (
                event({"type": "content_block_start", "index": index, "content_block": start})
                + out[0]
            )
            out[-1] += event({"type": "content_block_stop", "index": index})
            frames.extend(out)
        return frames

    def plan(self, answer: Answer, ctx: Context) -> StreamPlan:
        if (answer.thinking or answer.tool_calls) and not ctx.blocked:
            return self._plan_blocks(answer, ctx)
        tokens = [] if ctx.blocked else answer.tokens
        stop_reason, stop_sequence = self._stop(answer, ctx)
        start = self._message(ctx, [], (None, None), self._usage(answer.input_tokens, 1))
        head = [
            sse({"type": "message_start", "message": start}, "message_start"),
            sse(
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "text", "text": ""},
                },
                "content_block_start",
            ),
            sse({"type": "ping"}, "ping"),
        ]
        deltas = [
            sse(
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "text_delta", "text": token},
                },
                "content_block_delta",
            )
            for token in tokens
        ]
        tail = [
            sse({"type": "content_block_stop", "index": 0}, "content_block_stop"),
            sse(
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": stop_reason, "stop_sequence": stop_sequence},
                    "usage": {"output_tokens": len(tokens)},
                },
                "message_delta",
            ),
            sse({"type": "message_stop"}, "message_stop"),
        ]
        error = sse(
            {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
            "error",
        )
        malformed = (
            b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
            b'"delta":{"type":"text_del\n\n'
        )
        return StreamPlan(head=head, tokens=deltas, tail=tail, error=[error], malformed=malformed)

    def _plan_blocks(self, answer: Answer, ctx: Context) -> StreamPlan:
        stop_reason, stop_sequence = self._stop(answer, ctx)
        start = self._message(ctx, [], (None, None), self._usage(answer.input_tokens, 1))
        tail = [
            sse(
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": stop_reason, "stop_sequence": stop_sequence},
                    "usage": {"output_tokens": answer.output_tokens},
                },
                "message_delta",
            ),
            sse({"type": "message_stop"}, "message_stop"),
        ]
        error = sse(
            {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
            "error",
        )
        return StreamPlan(
            head=[
                sse({"type": "message_start", "message": start}, "message_start"),
                sse({"type": "ping"}, "ping"),
            ],
            tokens=self._block_frames(answer),
            tail=tail,
            error=[error],
        )

    def _model_entry(self, name: str) -> dict[str, Any]:
        profile = lookup_model("anthropic", name)
        return {
            "type": "model",
            "id": name,
            "display_name": profile.display_name if profile else name,
            "created_at": "2024-10-22T00:00:00Z",
        }

    def model_info(self, name: str, ctx: Context) -> Response:
        if name not in EMULATOR_MODELS["anthropic"]:
            return self.error("not_found", ctx)
        return json_response(self._model_entry(name))

    def models_list(self, request: Request) -> Response:
        """One page of GET /v1/models (limit, after_id / before_id -> has_more)."""
        names = EMULATOR_MODELS["anthropic"]
        return json_response(anthropic_page(request, names, self._model_entry))
