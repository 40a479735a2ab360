"""Ollama: ``POST /api/chat``, ``POST /api/generate``, ``GET /api/tags``, ``POST /api/pull``.

Streams are NDJSON (one JSON object per ``\\n``-terminated line); ``stream`` defaults to
true.  Content lines have ``done: false``; the last line has ``done: true``,
``done_reason`` and the counts and durations (nanoseconds).  An error after the body
started is a line ``{"error": "..."}`` and the status stays 200.  No authentication.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ..models import EMULATOR_MODELS, lookup_model
from ..streaming import StreamPlan, Writer
from ..text import Answer, canonical_model
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
    json_response,
)
from .openai import function_tools

_NS = 1_000_000_000
_LOAD_NS = 12_345_678
_MESSAGES = {
    "auth_missing": "unauthorized",
    "auth_invalid": "unauthorized",
    "rate_limit": "too many requests, please try again later",
    "server_error": "an error was encountered while running the model: unexpected EOF",
    "unavailable": "server busy, please try again.  maximum pending requests exceeded",
    "overloaded": "server busy, please try again.  maximum pending requests exceeded",
}


def _line(obj: Any) -> bytes:
    return compact_json(obj) + b"\n"


_BASE64_MAGIC = {"iVBORw0KGgo": "image/png", "/9j/": "image/jpeg", "R0lGOD": "image/gif"}


def _image_type(data: str) -> str:
    """The media type of a bare base64 image, from its first characters."""
    return next((t for head, t in _BASE64_MAGIC.items() if data.startswith(head)), "image/*")


def _timestamp(at: dt.datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"


def digest_of(name: str) -> str:
    return hashlib.sha256(f"n3-emulator/{name}".encode()).hexdigest()


class _OllamaBase(ProviderFormat):
    name = "ollama"
    stream_media_type = "application/x-ndjson"
    needs_auth = False

    def credentials(self, request: Request) -> str | None:
        return None

    def new_request_id(self) -> str:
        return digest_of(str(dt.datetime.now().timestamp()))[:16]

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
            text = f'model "{ctx.model}" not found, try pulling it first'
        elif kind == "bad_request":
            text = message or "invalid request"
        else:
            text = message if kind == "server_error" and message else _MESSAGES[kind]
        headers = self.response_headers(ctx)
        if kind == "rate_limit":
            headers.update(self.rate_limit_headers(ctx))
        return json_response({"error": text}, status or STATUS_OF_KIND[kind], headers)

    def _options(self, body: dict[str, Any]) -> tuple[int | None, list[str]]:
        options = body.get("options") or {}
        if not isinstance(options, dict):
            raise BadRequest("json: cannot unmarshal options into Go value of type map")
        max_tokens = as_int(options.get("num_predict"), "num_predict")
        if max_tokens is not None and max_tokens < 0:
            max_tokens = None  # -1 means "no limit" in Ollama
        return max_tokens, as_stops(options.get("stop"), "stop")

    def _features(self, body: dict[str, Any], images: list[Any]) -> dict[str, Any]:
        """tools, format (a schema, or "json"), think and images, as ChatRequest fields."""
        fmt = body.get("format")
        schema = fmt if isinstance(fmt, dict) else ({} if fmt == "json" else None)
        return {
            "tools": function_tools(body.get("tools")),
            "schema": schema,
            "reasoning": bool(body.get("think")),
            "images": [(_image_type(i), len(i) * 3 // 4) for i in images if isinstance(i, str)],
        }

    def _content(self, text: str) -> dict[str, Any]:
        return {"message": {"role": "assistant", "content": text}}

    def _thinking(self, text: str) -> dict[str, Any]:
        return {"message": {"role": "assistant", "content": "", "thinking": text}}

    def _calls(self, answer: Answer) -> dict[str, Any]:
        calls = [
            {"function": {"name": c.name, "arguments": c.arguments}} for c in answer.tool_calls
        ]
        return {"message": {"role": "assistant", "content": "", "tool_calls": calls}}

    def _final_extra(self, answer: Answer) -> dict[str, Any]:
        return {}

    def _stats(self, answer: Answer, ctx: Context) -> dict[str, Any]:
        pacing = ctx.pacing
        prompt_ns = int(pacing.first_token_delay * _NS)
        eval_ns = int(max(answer.output_tokens - 1, 0) * pacing.token_delay * _NS) + 1
        return {
            "total_duration": _LOAD_NS + prompt_ns + eval_ns,
            "load_duration": _LOAD_NS,
            "prompt_eval_count": answer.input_tokens,
            "prompt_eval_duration": prompt_ns,
            "eval_count": answer.output_tokens,
            "eval_duration": eval_ns,
        }

    def _done(self, answer: Answer, ctx: Context, at: dt.datetime) -> dict[str, Any]:
        reason = "length" if answer.finish_reason == "length" else "stop"
        obj = {"model": ctx.model, "created_at": _timestamp(at), **self._content("")}
        obj.update({"done": True, "done_reason": reason})
        obj.update(self._final_extra(answer))
        obj.update(self._stats(answer, ctx))
        return obj

    def complete(self, answer: Answer, ctx: Context) -> Any:
        body = self._done(answer, ctx, dt.datetime.now(dt.UTC))
        body.update(self._content(answer.text))
        if answer.thinking:
            self._merge(body, self._thinking("".join(answer.thinking)))
        if answer.tool_calls:
            self._merge(body, self._calls(answer))
        return body

    def _merge(self, body: dict[str, Any], extra: dict[str, Any]) -> None:
        """Add a message's thinking or tool_calls (or generate's thinking) to body."""
        for key, value in extra.items():
            if isinstance(value, dict) and isinstance(body.get(key), dict):
                body[key].update({k: v for k, v in value.items() if k not in ("content",)})
            elif key != "response":
                body[key] = value

    def plan(self, answer: Answer, ctx: Context) -> StreamPlan:
        start = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=ctx.pacing.first_token_delay)
        step = dt.timedelta(seconds=ctx.pacing.token_delay)
        pieces = [self._thinking(t) for t in answer.thinking]
        pieces += [self._content(t) for t in answer.tokens]
        if answer.tool_calls:
            pieces.append(self._calls(answer))
        tokens = [
            _line(
                {
                    "model": ctx.model,
                    "created_at": _timestamp(start + i * step),
                    **piece,
                    "done": False,
                }
            )
            for i, piece in enumerate(pieces)
        ]
        end = start + len(pieces) * step
        error = _line({"error": "an error was encountered while running the model: unexpected EOF"})
        malformed = f'{{"model":"{ctx.model}","created_at":"{_timestamp(start)[:10]}'.encode()
        return StreamPlan(
            tokens=tokens,
            tail=[_line(self._done(answer, ctx, end))],
            error=[error],
            malformed=malformed + b"\n",
        )

    def encode_body(self, body: Any) -> bytes:
        return compact_json(body)


class OllamaChatFormat(_OllamaBase):
    def parse(self, body: Any, request: Request, path_model: str | None) -> ChatRequest:
        if not isinstance(body, dict):
            raise BadRequest("invalid request body")
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise BadRequest("model is required")
        raw = body.get("messages") or []
        if not isinstance(raw, list):
            raise BadRequest("json: cannot unmarshal messages into Go value of type []api.Message")
        messages = []
        images: list[Any] = []
        for item in raw:
            if not isinstance(item, dict):
                raise BadRequest("json: cannot unmarshal message into Go value of type api.Message")
            content = item.get("content")
            messages.append(
                {
                    "role": str(item.get("role") or "user"),
                    "content": content if isinstance(content, str) else "",
                }
            )
            images.extend(item.get("images") or ())
        max_tokens, stop = self._options(body)
        return ChatRequest(
            model=model,
            messages=messages,
            max_tokens=max_tokens,
            stop=stop,
            stream=body.get("stream", True) is not False,
            **self._features(body, images),
        )


class OllamaGenerateFormat(_OllamaBase):
    def parse(self, body: Any, request: Request, path_model: str | None) -> ChatRequest:
        if not isinstance(body, dict):
            raise BadRequest("invalid request body")
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise BadRequest("model is required")
        prompt = body.get("prompt") or ""
        system = body.get("system")
        if not isinstance(prompt, str):
            raise BadRequest("json: cannot unmarshal prompt into Go value of type string")
        max_tokens, stop = self._options(body)
        features = self._features(body, body.get("images") or [])
        features["tools"] = []
        return ChatRequest(
            model=model,
            messages=[{"role": "user", "content": prompt}],
            system=system if isinstance(system, str) else None,
            max_tokens=max_tokens,
            stop=stop,
            stream=body.get("stream", True) is not False,
            **features,
        )

    def _content(self, text: str) -> dict[str, Any]:
        return {"response": text}

    def _thinking(self, text: str) -> dict[str, Any]:
        return {"response": "", "thinking": text}

    def _final_extra(self, answer: Answer) -> dict[str, Any]:
        return {"context": [(answer.input_tokens * 7919 + i * 104729) % 128_000 for i in range(8)]}


# -- model management ------------------------------------------------------------------


def _tag_entry(name: str) -> dict[str, Any]:
    profile = lookup_model("ollama", name)
    assert profile is not None
    return {
        "name": f"{name}:latest",
        "model": f"{name}:latest",
        "modified_at": "2025-01-15T10:20:30.123456789Z",
        "size": profile.size_bytes,
        "digest": digest_of(name),
        "details": {
            "parent_model": "",
            "format": "gguf",
            "family": profile.family,
            "families": [profile.family],
            "parameter_size": profile.parameter_size,
            "quantization_level": "Q4_0",
        },
    }


def tags_response() -> Response:
    return json_response({"models": [_tag_entry(n) for n in EMULATOR_MODELS["ollama"]]})


def pull_lines(model: str) -> list[dict[str, Any]]:
    """The progress objects of ``/api/pull`` for a known model, or an error object."""
    profile = lookup_model("ollama", model)
    if profile is None or profile.name != canonical_model(model):
        return [
            {"status": "pulling manifest"},
            {"error": "pull model manifest: file does not exist"},
        ]
    lines: list[dict[str, Any]] = [{"status": "pulling manifest"}]
    layers = [
        (digest_of(profile.name + "/weights"), profile.size_bytes),
        (digest_of(profile.name + "/template"), 1_481),
        (digest_of(profile.name + "/params"), 110),
    ]
    for digest, total in layers:
        for fraction in (0.0, 0.25, 0.5, 0.75, 1.0):
            lines.append(
                {
                    "status": f"pulling {digest[:12]}",
                    "digest": f"sha256:{digest}",
                    "total": total,
                    "completed": int(total * fraction),
                }
            )
    lines.extend(
        [
            {"status": "verifying sha256 digest"},
            {"status": "writing manifest"},
            {"status": "success"},
        ]
    )
    return lines


async def produce_pull(writer: Writer, lines: list[dict[str, Any]], delay: float) -> None:
    for index, obj in enumerate(lines):
        if index and delay > 0:
            await asyncio.sleep(delay)
        await writer.write(_line(obj), token=True)
