"""Gemini: ``POST /{v1beta,v1}/models/{model}:generateContent`` / ``:streamGenerateContent``.

With ``?alt=sse`` the stream is ``data: <GenerateContentResponse>`` events framed with
CRLF (``\\r\\n\\r\\n``), no sentinel, ending at EOF; without it the body is one JSON array
written element by element.  Each chunk carries one token; the last one also carries
``finishReason`` and the full ``usageMetadata``.  A blocked prompt is one chunk without
candidates and with ``promptFeedback.blockReason``.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ..listing import gemini_page
from ..models import EMULATOR_MODELS, lookup_model
from ..streaming import StreamPlan
from ..text import Answer
from .base import (
    BadRequest,
    ChatRequest,
    Context,
    ErrorKind,
    ProviderFormat,
    as_int,
    as_stops,
    random_id,
)

_FINISH = {"stop": "STOP", "length": "MAX_TOKENS", "tool_calls": "STOP"}

_ERRORS: dict[str, tuple[int, str, str]] = {
    "auth_missing": (
        403,
        "PERMISSION_DENIED",
        "Method doesn't allow unregistered callers (callers without established identity). "
        "Please use API Key or other form of API consumer identity to call this API.",
    ),
    "auth_invalid": (400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key."),
    "rate_limit": (
        429,
        "RESOURCE_EXHAUSTED",
        "Resource has been exhausted (e.g. check quota).",
    ),
    "server_error": (
        500,
        "INTERNAL",
        "An internal error has occurred. Please retry or report in "
        "https://developers.generativeai.google/guide/troubleshooting",
    ),
    "unavailable": (503, "UNAVAILABLE", "The model is overloaded. Please try again later."),
    "overloaded": (529, "UNAVAILABLE", "The model is overloaded. Please try again later."),
}

#: The thoughtSignature on the emulator's function calls (opaque, like the real one).
_SIGNATURE = "Cl4BbjNlbXVsYXRvci10aG91Z2h0LXNpZ25hdHVyZQ=="

_SAFETY_RATINGS = [
    {"category": "HARM_CATEGORY_HATE_SPEECH", "probability": "NEGLIGIBLE"},
    {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH"},
    {"category": "HARM_CATEGORY_HARASSMENT", "probability": "NEGLIGIBLE"},
    {"category": "HARM_CATEGORY_SEXUALLY_EXPLICIT", "probability": "NEGLIGIBLE"},
]


def _google_json(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode()


def _parts_text(value: Any, where: str) -> str:
    if isinstance(value, str):
        return value
    if not isinstance(value, dict):
        raise BadRequest(f"Invalid value at '{where}': expected a Content object")
    parts = value.get("parts")
    if parts is None:
        return ""
    if not isinstance(parts, list):
        raise BadRequest(f"Invalid value at '{where}.parts': expected a list")
    return "\n".join(str(p["text"]) for p in parts if isinstance(p, dict) and "text" in p)


def _pick(obj: dict[str, Any], camel: str, snake: str) -> Any:
    return obj[camel] if camel in obj else obj.get(snake)


def _turns(item: Any, index: int) -> list[dict[str, str]]:
    """One Content as plain turns: functionResponse parts become "tool" turns."""
    role = item.get("role") if isinstance(item, dict) else None
    parts = item.get("parts") if isinstance(item, dict) else None
    out = []
    for part in parts if isinstance(parts, list) else ():
        response = (
            _pick(part, "functionResponse", "function_response") if isinstance(part, dict) else None
        )
        if isinstance(response, dict):
            value = response.get("response")
            if isinstance(value, dict) and len(value) == 1:
                value = next(iter(value.values()))  # {"result": ...} or {"error": ...}
            text = value if isinstance(value, str) else json.dumps(value)
            out.append({"role": "tool", "content": text})
    if not out or any(isinstance(p, dict) and "text" in p for p in parts or ()):
        out.append({"role": role or "user", "content": _parts_text(item, f"contents[{index}]")})
    return out


def _images(contents: list[Any]) -> list[tuple[str, int | None]]:
    out: list[tuple[str, int | None]] = []
    for item in contents:
        for part in (item.get("parts") or ()) if isinstance(item, dict) else ():
            inline = _pick(part, "inlineData", "inline_data") if isinstance(part, dict) else None
            if isinstance(inline, dict):
                data = inline.get("data")
                size = len(data) * 3 // 4 if isinstance(data, str) else None
                out.append((str(_pick(inline, "mimeType", "mime_type") or "image/*"), size))
    return out


def _tools(raw: Any) -> list[dict[str, Any]]:
    out = []
    for tool in raw if isinstance(raw, list) else ():
        decls = (
            _pick(tool, "functionDeclarations", "function_declarations")
            if isinstance(tool, dict)
            else None
        )
        for decl in decls if isinstance(decls, list) else ():
            if isinstance(decl, dict) and isinstance(decl.get("name"), str):
                params = (
                    _pick(decl, "parametersJsonSchema", "parameters_json_schema")
                    or decl.get("parameters")
                    or {}
                )
                out.append({"name": decl["name"], "parameters": _lower_types(params)})
    return out


def _lower_types(schema: Any) -> Any:
    """OpenAPI-style schemas (Gemini's `parameters`) write types in capitals: STRING."""
    if isinstance(schema, list):
        return [_lower_types(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _lower_types(v) for k, v in schema.items()}
    if isinstance(out.get("type"), str):
        out["type"] = out["type"].lower()
    return out


class GeminiFormat(ProviderFormat):
    name = "gemini"

    def credentials(self, request: Request) -> str | None:
        key = request.headers.get("x-goog-api-key", "").strip()
        return key or request.query_params.get("key", "").strip() or None

    def parse(self, body: Any, request: Request, path_model: str | None) -> ChatRequest:
        if not isinstance(body, dict):
            raise BadRequest("Invalid JSON payload received. Expected an object.")
        contents = body.get("contents")
        if not isinstance(contents, list) or not contents:
            raise BadRequest("* GenerateContentRequest.contents: contents is not specified")
        messages = []
        for index, item in enumerate(contents):
            messages.extend(_turns(item, index))
        system_raw = _pick(body, "systemInstruction", "system_instruction")
        config = _pick(body, "generationConfig", "generation_config") or {}
        if not isinstance(config, dict):
            raise BadRequest("Invalid value at 'generation_config': expected an object")
        return ChatRequest(
            model=path_model or "",
            messages=messages,
            system=_parts_text(system_raw, "system_instruction") if system_raw else None,
            max_tokens=as_int(
                _pick(config, "maxOutputTokens", "max_output_tokens"), "maxOutputTokens"
            ),
            stop=as_stops(_pick(config, "stopSequences", "stop_sequences"), "stopSequences"),
            tools=_tools(body.get("tools")),
            schema=self._schema(config),
            reasoning=bool(
                (_pick(config, "thinkingConfig", "thinking_config") or {}).get("includeThoughts")
                or (_pick(config, "thinkingConfig", "thinking_config") or {}).get(
                    "include_thoughts"
                )
            ),
            images=_images(contents),
        )

    def _schema(self, config: dict[str, Any]) -> dict[str, Any] | None:
        schema = _pick(config, "responseJsonSchema", "response_json_schema") or _pick(
            config, "responseSchema", "response_schema"
        )
        if isinstance(schema, dict):
            lowered: dict[str, Any] = _lower_types(schema)
            return lowered
        mime = _pick(config, "responseMimeType", "response_mime_type")
        return {} if mime == "application/json" else None

    def new_request_id(self) -> str:
        return random_id(22)

    def prepare(self, ctx: Context, chat: ChatRequest) -> None:
        super().prepare(ctx, chat)
        ctx.options["response_id"] = random_id(22)

    def response_headers(self, ctx: Context) -> dict[str, str]:
        return {"x-request-id": ctx.request_id, "server-timing": "gfet4t7; dur=1"}

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
            version = ctx.options.get("api_version", "v1beta")
            code, state = 404, "NOT_FOUND"
            text = (
                f"models/{ctx.model} is not found for API version {version}, or is not "
                "supported for generateContent. Call ListModels to see the list of "
                "available models and their supported methods."
            )
        elif kind == "bad_request":
            code, state, text = 400, "INVALID_ARGUMENT", message or "Invalid request."
        else:
            code, state, text = _ERRORS[kind]
            if kind == "server_error" and message:
                text = message
        error: dict[str, Any] = {"code": status or code, "message": text, "status": state}
        if kind == "auth_invalid":
            error["details"] = [
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "API_KEY_INVALID",
                    "domain": "googleapis.com",
                    "metadata": {"service": "generativelanguage.googleapis.com"},
                }
            ]
        headers = self.response_headers(ctx)
        if kind == "rate_limit":
            headers.update(self.rate_limit_headers(ctx))
        body = json.dumps({"error": error}, indent=2, ensure_ascii=False)
        return Response(body, status or code, headers, "application/json; charset=UTF-8")

    # -- bodies --------------------------------------------------------------------
    def _usage(self, answer: Answer, output: int | None) -> dict[str, Any]:
        usage: dict[str, Any] = {"promptTokenCount": answer.input_tokens}
        if output is not None:
            usage["candidatesTokenCount"] = output
        usage["totalTokenCount"] = answer.input_tokens + (output or 0)
        usage["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": answer.input_tokens}]
        return usage

    def _chunk(
        self,
        ctx: Context,
        candidate: dict[str, Any] | None,
        usage: dict[str, Any],
        feedback: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        obj: dict[str, Any] = {}
        if candidate is not None:
            obj["candidates"] = [candidate]
        if feedback is not None:
            obj["promptFeedback"] = feedback
        obj["usageMetadata"] = usage
        obj["modelVersion"] = ctx.model
        obj["responseId"] = ctx.options["response_id"]
        return obj

    def _blocked(self, answer: Answer, ctx: Context) -> dict[str, Any]:
        usage = {"promptTokenCount": answer.input_tokens, "totalTokenCount": answer.input_tokens}
        return self._chunk(
            ctx, None, usage, {"blockReason": "SAFETY", "safetyRatings": _SAFETY_RATINGS}
        )

    def _candidate(
        self, text: str | None, finish: str | None, parts: list[dict[str, Any]] | None = None
    ) -> dict[str, Any]:
        content: dict[str, Any] = {"role": "model"}
        if parts is not None:
            content = {"parts": parts, "role": "model"}
        elif text is not None:
            content = {"parts": [{"text": text}], "role": "model"}
        candidate: dict[str, Any] = {"content": content}
        if finish is not None:
            candidate["finishReason"] = finish
        candidate["index"] = 0
        return candidate

    def _call_parts(self, answer: Answer) -> list[dict[str, Any]]:
        return [
            {"functionCall": {"name": c.name, "args": c.arguments}, "thoughtSignature": _SIGNATURE}
            for c in answer.tool_calls
        ]

    def complete(self, answer: Answer, ctx: Context) -> Any:
        if ctx.blocked:
            return self._blocked(answer, ctx)
        finish = _FINISH[answer.finish_reason]
        if answer.thinking or answer.tool_calls:
            parts: list[dict[str, Any]] = []
            if answer.thinking:
                parts.append({"text": "".join(answer.thinking), "thought": True})
            if answer.tokens:
                parts.append({"text": answer.text})
            candidate = self._candidate(None, finish, parts + self._call_parts(answer))
        else:
            candidate = self._candidate(answer.text if answer.tokens else None, finish)
        return self._chunk(ctx, candidate, self._usage(answer, answer.output_tokens))

    def encode_body(self, body: Any) -> bytes:
        return json.dumps(body, indent=2, ensure_ascii=False).encode()

    def plan(self, answer: Answer, ctx: Context) -> StreamPlan:
        finish = _FINISH[answer.finish_reason]
        objects: list[dict[str, Any]] = []
        if ctx.blocked:
            final = [self._blocked(answer, ctx)]
        elif answer.thinking or answer.tool_calls:
            for token in answer.thinking:
                parts = [{"text": token, "thought": True}]
                objects.append(
                    self._chunk(ctx, self._candidate(None, None, parts), self._usage(answer, None))
                )
            for token in answer.tokens:
                objects.append(
                    self._chunk(ctx, self._candidate(token, None), self._usage(answer, None))
                )
            # function calls come whole, in the last chunk with the finish reason
            last_parts = self._call_parts(answer) or [{"text": ""}]
            objects.append(
                self._chunk(
                    ctx,
                    self._candidate(None, finish, last_parts),
                    self._usage(answer, answer.output_tokens),
                )
            )
            final = []
        else:
            last = len(answer.tokens) - 1
            for index, token in enumerate(answer.tokens):
                done = index == last
                objects.append(
                    self._chunk(
                        ctx,
                        self._candidate(token, finish if done else None),
                        self._usage(answer, answer.output_tokens if done else None),
                    )
                )
            final = (
                []
                if answer.tokens
                else [self._chunk(ctx, self._candidate(None, finish), self._usage(answer, 0))]
            )
        error_code, error_state, error_text = _ERRORS["server_error"]
        error = {"error": {"code": error_code, "message": error_text, "status": error_state}}
        if ctx.options.get("sse", True):

            def frame(obj: dict[str, Any]) -> bytes:
                return b"data: " + _google_json(obj) + b"\r\n\r\n"

            return StreamPlan(
                tokens=[frame(o) for o in objects],
                tail=[frame(o) for o in final],
                error=[frame(error)],
                malformed=b'data: {"candidates": [tr\r\n\r\n',
            )
        # JSON array framing (streamGenerateContent without alt=sse).
        frames = [_google_json(o) for o in objects + final]
        encoded = [(b"[" if i == 0 else b"\r\n,") + f for i, f in enumerate(frames)]
        tokens, tail = encoded[: len(objects)], encoded[len(objects) :]
        tail.append(b"]" if encoded else b"[]")
        sep = b"\r\n," if objects else b"["
        return StreamPlan(
            tokens=tokens,
            tail=tail,
            error=[sep + _google_json(error) + b"]"],
            malformed=sep + b'{"candidates": [tr',
        )

    # -- listing -------------------------------------------------------------------
    def _model_entry(self, name: str) -> dict[str, Any]:
        profile = lookup_model("gemini", name)
        assert profile is not None
        return {
            "name": f"models/{name}",
            "version": "001",
            "displayName": profile.display_name or name,
            "description": f"{profile.display_name or name} (n3 emulator)",
            "inputTokenLimit": profile.context_window,
            "outputTokenLimit": profile.max_output_tokens,
            "supportedGenerationMethods": ["generateContent", "countTokens"],
            "temperature": 1,
            "topP": 0.95,
            "topK": 40,
            "maxTemperature": 2,
        }

    def models_list(self, request: Request) -> Response:
        """One page of GET /v1beta/models (pageSize, pageToken -> nextPageToken)."""
        body = gemini_page(request, EMULATOR_MODELS["gemini"], self._model_entry)
        return Response(_google_json(body), 200, None, "application/json; charset=UTF-8")

    def model_info(self, name: str, ctx: Context) -> Response:
        clean = name[len("models/") :] if name.startswith("models/") else name
        if clean not in EMULATOR_MODELS["gemini"]:
            return self.error("not_found", ctx)
        return Response(
            _google_json(self._model_entry(clean)), 200, None, "application/json; charset=UTF-8"
        )
