"""Cohere: ``POST /v2/chat`` (SSE) and ``POST /v1/chat`` (NDJSON).

v2 stream: SSE events with ``event: <type>`` lines -- ``message-start``,
``content-start``, one ``content-delta`` per token, ``content-end``, ``message-end`` (with
``finish_reason`` and ``usage``), then ``data: [DONE]``.  An in-band error is a
``message-end`` whose delta has ``error`` and ``finish_reason: "ERROR"``.

v1 stream: one JSON object per line -- ``stream-start`` (generation_id), one
``text-generation`` per token, ``stream-end`` (finish_reason and the whole response with
``meta.billed_units``); every line has ``is_finished``.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ..streaming import StreamPlan
from ..text import Answer, tokenize
from .base import (
    STATUS_OF_KIND,
    BadRequest,
    ChatRequest,
    Context,
    ErrorKind,
    ProviderFormat,
    as_int,
    as_stops,
    compact_json,
    data_url_image,
    json_response,
    sse,
)
from .openai import function_tools

_MESSAGES = {
    "auth_missing": "no api key supplied",
    "auth_invalid": "invalid api token",
    "rate_limit": (
        "You are using a Trial key, which is limited to 20 API calls / minute. You can "
        "continue to use the Trial key for free or upgrade to a Production key with higher "
        "rate limits at 'https://dashboard.cohere.com/api-keys'."
    ),
    "server_error": "internal server error, this has been reported to our developers",
    "unavailable": "service unavailable",
    "overloaded": "the server is overloaded, please try again later",
}
_STREAM_ERROR = "internal server error, this has been reported to our developers"


def _finish(answer: Answer) -> str:
    if answer.finish_reason == "tool_calls":
        return "TOOL_CALL"
    if answer.stop_sequence is not None:
        return "STOP_SEQUENCE"
    return "MAX_TOKENS" if answer.finish_reason == "length" else "COMPLETE"


def _usage(answer: Answer, output: int | None = None) -> dict[str, Any]:
    out = answer.output_tokens if output is None else output
    counts = {"input_tokens": answer.input_tokens, "output_tokens": out}
    return {"billed_units": dict(counts), "tokens": dict(counts)}


def _text(content: Any, where: str) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    if isinstance(content, list):
        return "\n".join(
            str(part.get("text", ""))
            for part in content
            if isinstance(part, dict) and part.get("type", "text") == "text"
        )
    raise BadRequest(f"invalid request: {where} must be a string or a list of content items")


def _v2_content(item: dict[str, Any]) -> str:
    content = item.get("content")
    if item["role"] == "tool" and isinstance(content, list):
        return "\n".join(
            json.dumps(part.get("document"))
            if part.get("type") == "document"
            else str(part.get("text", ""))
            for part in content
            if isinstance(part, dict)
        )
    return _text(content, "content")


def _v2_images(raw: list[Any]) -> list[tuple[str, int | None]]:
    return [
        data_url_image((part.get("image_url") or {}).get("url"))
        for item in raw
        for part in (item.get("content") if isinstance(item.get("content"), list) else ())
        if isinstance(part, dict) and part.get("type") == "image_url"
    ]


class _CohereBase(ProviderFormat):
    name = "cohere"

    def new_request_id(self) -> str:
        return uuid.uuid4().hex

    def prepare(self, ctx: Context, chat: ChatRequest) -> None:
        super().prepare(ctx, chat)
        ctx.options["generation_id"] = str(uuid.uuid4())
        ctx.options["response_id"] = str(uuid.uuid4())

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
            text = (
                f"model '{ctx.model}' not found, make sure the correct model ID was used and "
                "that you have access to the model."
            )
        elif kind == "bad_request":
            text = message or "invalid request"
        else:
            text = message if kind == "server_error" and message else _MESSAGES[kind]
        headers = self.response_headers(ctx)
        if kind == "rate_limit":
            headers.update(self.rate_limit_headers(ctx))
        return json_response({"message": text}, status or STATUS_OF_KIND[kind], headers)


class CohereV2Format(_CohereBase):
    def parse(self, body: Any, request: Request, path_model: str | None) -> ChatRequest:
        if not isinstance(body, dict):
            raise BadRequest("invalid request: expected a JSON object")
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise BadRequest("invalid request: model must be specified")
        raw = body.get("messages")
        if not isinstance(raw, list) or not raw:
            raise BadRequest("invalid request: messages must contain at least one message")
        messages = []
        for index, item in enumerate(raw):
            if not isinstance(item, dict) or not isinstance(item.get("role"), str):
                raise BadRequest(f"invalid request: messages[{index}].role is required")
            messages.append({"role": item["role"], "content": _v2_content(item)})
        fmt = body.get("response_format")
        schema = None
        if isinstance(fmt, dict) and fmt.get("type") == "json_object":
            schema = fmt.get("json_schema") if isinstance(fmt.get("json_schema"), dict) else {}
        thinking = body.get("thinking")
        return ChatRequest(
            model=model,
            messages=messages,
            max_tokens=as_int(body.get("max_tokens"), "max_tokens"),
            stop=as_stops(body.get("stop_sequences"), "stop_sequences"),
            stream=bool(body.get("stream", False)),
            tools=function_tools(body.get("tools")),
            schema=schema,
            reasoning=isinstance(thinking, dict) and thinking.get("type") == "enabled",
            images=_v2_images(raw),
        )

    def complete(self, answer: Answer, ctx: Context) -> Any:
        content: list[dict[str, Any]] = []
        if answer.thinking:
            content.append({"type": "thinking", "thinking": "".join(answer.thinking)})
        if answer.text or not answer.tool_calls:
            content.append({"type": "text", "text": answer.text})
        message: dict[str, Any] = {"role": "assistant", "content": content}
        if answer.tool_calls:
            message["tool_plan"] = _plan_text(answer)
            message["tool_calls"] = [
                {
                    "id": _call_id(c),
                    "type": "function",
                    "function": {"name": c.name, "arguments": c.arguments_json},
                }
                for c in answer.tool_calls
            ]
        return {
            "id": ctx.options["response_id"],
            "message": message,
            "finish_reason": _finish(answer),
            "usage": _usage(answer),
        }

    def _feature_frames(self, answer: Answer) -> list[bytes]:
        """Thinking, text, tool plan and calls, each event type as Cohere names it."""
        frames: list[bytes] = []

        def event(obj: dict[str, Any]) -> bytes:
            return sse(obj, obj["type"])

        def block(index: int, kind: str, pieces: list[str] | tuple[str, ...]) -> None:
            start = {"message": {"content": {"type": kind, kind: ""}}}
            out = [
                event(
                    {
                        "type": "content-delta",
                        "index": index,
                        "delta": {"message": {"content": {kind: piece}}},
                    }
                )
                for piece in pieces
            ] or [b""]
            out[0] = event({"type": "content-start", "index": index, "delta": start}) + out[0]
            out[-1] += event({"type": "content-end", "index": index})
            frames.extend(out)

        index = 0
        if answer.thinking:
            block(index, "thinking", answer.thinking)
            index += 1
        if answer.tokens or not answer.tool_calls:
            block(index, "text", answer.tokens)
        if answer.tool_calls:
            for piece in tokenize(_plan_text(answer)):
                frames.append(
                    event({"type": "tool-plan-delta", "delta": {"message": {"tool_plan": piece}}})
                )
        for n, call in enumerate(answer.tool_calls):
            first = {
                "id": _call_id(call),
                "type": "function",
                "function": {"name": call.name, "arguments": ""},
            }
            frames.append(
                event(
                    {
                        "type": "tool-call-start",
                        "index": n,
                        "delta": {"message": {"tool_calls": first}},
                    }
                )
            )
            for piece in call.pieces:
                delta = {"message": {"tool_calls": {"function": {"arguments": piece}}}}
                frames.append(event({"type": "tool-call-delta", "index": n, "delta": delta}))
            frames[-1] += event({"type": "tool-call-end", "index": n})
        return frames

    def plan(self, answer: Answer, ctx: Context) -> StreamPlan:
        head = [
            sse(
                {
                    "id": ctx.options["response_id"],
                    "type": "message-start",
                    "delta": {
                        "message": {
                            "role": "assistant",
                            "content": [],
                            "tool_plan": "",
                            "tool_calls": [],
                            "citations": [],
                        }
                    },
                },
                "message-start",
            ),
            sse(
                {
                    "type": "content-start",
                    "index": 0,
                    "delta": {"message": {"content": {"type": "text", "text": ""}}},
                },
                "content-start",
            ),
        ]
        tokens = [
            sse(
                {
                    "type": "content-delta",
                    "index": 0,
                    "delta": {"message": {"content": {"text": token}}},
                },
                "content-delta",
            )
            for token in answer.tokens
        ]
        end = {
            "type": "message-end",
            "delta": {"finish_reason": _finish(answer), "usage": _usage(answer)},
        }
        tail = [
            sse({"type": "content-end", "index": 0}, "content-end"),
            sse(end, "message-end"),
            b"data: [DONE]\n\n",
        ]
        if answer.thinking or answer.tool_calls:
            head = head[:1]
            tokens = self._feature_frames(answer)
            tail = tail[1:]
        error = {
            "type": "message-end",
            "delta": {"error": _STREAM_ERROR, "finish_reason": "ERROR", "usage": _usage(answer, 0)},
        }
        malformed = (
            b'event: content-delta\ndata: {"type":"content-delta","index":0,"delta":{"mess\n\n'
        )
        return StreamPlan(
            head=head,
            tokens=tokens,
            tail=tail,
            error=[sse(error, "message-end")],
            malformed=malformed,
        )


def _call_id(call: Any) -> str:
    return f"{call.name}_{call.key[:12]}"


def _plan_text(answer: Answer) -> str:
    names = ", ".join(c.name for c in answer.tool_calls)
    return f"I will call {names} to answer this."


class CohereV1Format(_CohereBase):
    stream_media_type = "application/stream+json"
    default_model = "command-r-plus"

    def parse(self, body: Any, request: Request, path_model: str | None) -> ChatRequest:
        if not isinstance(body, dict):
            raise BadRequest("invalid request: expected a JSON object")
        message = body.get("message")
        if not isinstance(message, str):
            raise BadRequest("invalid request: message must be a string")
        history = body.get("chat_history") or []
        if not isinstance(history, list):
            raise BadRequest("invalid request: chat_history must be a list")
        messages = []
        for index, item in enumerate(history):
            if not isinstance(item, dict) or not isinstance(item.get("role"), str):
                raise BadRequest(f"invalid request: chat_history[{index}].role is required")
            text = _text(item.get("message"), "message")
            messages.append({"role": item["role"], "content": text})
        messages.append({"role": "user", "content": message})
        preamble = body.get("preamble")
        model = body.get("model") or self.default_model
        if not isinstance(model, str):
            raise BadRequest("invalid request: model must be a string")
        return ChatRequest(
            model=model,
            messages=messages,
            system=preamble if isinstance(preamble, str) else None,
            max_tokens=as_int(body.get("max_tokens"), "max_tokens"),
            stop=as_stops(body.get("stop_sequences"), "stop_sequences"),
            stream=bool(body.get("stream", False)),
            options={"history": messages},
        )

    def _finish_v1(self, answer: Answer) -> str:
        return "MAX_TOKENS" if answer.finish_reason == "length" else "COMPLETE"

    def _response(
        self, answer: Answer, ctx: Context, text: str, finish: str, output: int
    ) -> dict[str, Any]:
        history = [
            {
                "role": "CHATBOT"
                if m["role"] in ("assistant", "CHATBOT", "chatbot")
                else ("SYSTEM" if m["role"].lower() == "system" else "USER"),
                "message": m["content"],
            }
            for m in ctx.options.get("history", [])
        ]
        history.append({"role": "CHATBOT", "message": text})
        return {
            "response_id": ctx.options["response_id"],
            "text": text,
            "generation_id": ctx.options["generation_id"],
            "chat_history": history,
            "finish_reason": finish,
            "meta": {
                "api_version": {"version": "1"},
                "billed_units": {"input_tokens": answer.input_tokens, "output_tokens": output},
                "tokens": {"input_tokens": answer.input_tokens, "output_tokens": output},
            },
        }

    def complete(self, answer: Answer, ctx: Context) -> Any:
        return self._response(
            answer, ctx, answer.text, self._finish_v1(answer), answer.output_tokens
        )

    def plan(self, answer: Answer, ctx: Context) -> StreamPlan:
        def line(obj: dict[str, Any]) -> bytes:
            return compact_json(obj) + b"\n"

        finish = self._finish_v1(answer)
        head = [
            line(
                {
                    "is_finished": False,
                    "event_type": "stream-start",
                    "generation_id": ctx.options["generation_id"],
                }
            )
        ]
        tokens = [
            line({"is_finished": False, "event_type": "text-generation", "text": token})
            for token in answer.tokens
        ]
        tail = [
            line(
                {
                    "is_finished": True,
                    "event_type": "stream-end",
                    "response": self._response(
                        answer, ctx, answer.text, finish, answer.output_tokens
                    ),
                    "finish_reason": finish,
                }
            )
        ]
        error = line(
            {
                "is_finished": True,
                "event_type": "stream-end",
                "response": self._response(answer, ctx, "", "ERROR", 0),
                "finish_reason": "ERROR",
            }
        )
        malformed = b'{"is_finished":false,"event_type":"text-gen\n'
        return StreamPlan(head=head, tokens=tokens, tail=tail, error=[error], malformed=malformed)
