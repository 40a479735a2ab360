"""What every provider format provides, plus small shared helpers for writing wire bytes."""

from __future__ import annotations

import json
import secrets
import string
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from starlette.requests import Request
from starlette.responses import Response

from ..models import Pacing
from ..streaming import StreamPlan
from ..text import Answer

__all__ = [
    "BadRequest",
    "ChatRequest",
    "Context",
    "ErrorKind",
    "ProviderFormat",
    "as_int",
    "compact_json",
    "data_url_image",
    "html_error_page",
    "json_response",
    "random_id",
    "sse",
]

ErrorKind = Literal[
    "auth_missing",
    "auth_invalid",
    "not_found",
    "bad_request",
    "rate_limit",
    "server_error",
    "unavailable",
    "overloaded",
]

STATUS_OF_KIND: dict[str, int] = {
    "auth_missing": 401,
    "auth_invalid": 401,
    "not_found": 404,
    "bad_request": 400,
    "rate_limit": 429,
    "server_error": 500,
    "unavailable": 503,
    "overloaded": 529,
}

_ALPHABET = string.ascii_letters + string.digits


def random_id(length: int, alphabet: str = _ALPHABET) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def compact_json(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


def sse(data: Any, event: str | None = None, *, newline: str = "\n") -> bytes:
    """One SSE event; ``data`` is JSON-encoded unless it is already a str."""
    payload = data if isinstance(data, str) else compact_json(data).decode()
    lines = [f"event: {event}"] if event else []
    lines.append(f"data: {payload}")
    return (newline.join(lines) + newline + newline).encode()


def json_response(
    body: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    return Response(compact_json(body), status, dict(headers or {}), "application/json")


def html_error_page(status: int = 502, headers: Mapping[str, str] | None = None) -> Response:
    page = (
        "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
        "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
        "</body>\r\n</html>\r\n"
    )
    return Response(page, status, dict(headers or {}), "text/html")


def as_int(value: Any, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value:
        raise BadRequest(f"{name}: expected an integer, got {value!r}", param=name)
    return int(value)


def as_stops(value: Any, name: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise BadRequest(f"{name}: expected a string or a list of strings", param=name)


class BadRequest(Exception):
    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


@dataclass
class ChatRequest:
    """A provider request reduced to what the answer generator needs."""

    model: str  # as sent, possibly with a ~fault suffix
    messages: list[dict[str, str]]
    system: str | None = None
    max_tokens: int | None = None
    stop: list[str] = field(default_factory=list)
    stream: bool = False
    options: dict[str, Any] = field(default_factory=dict)
    #: Tools offered: {"name", "parameters"} each, in the request's order.
    tools: list[dict[str, Any]] = field(default_factory=list)
    #: The JSON schema the answer must match (structured output), if any.
    schema: dict[str, Any] | None = None
    #: Whether the request asked to see the model's thinking.
    reasoning: bool = False
    #: The attached images: (media type, size in bytes or None for a URL).
    images: list[tuple[str, int | None]] = field(default_factory=list)


def data_url_image(url: Any) -> tuple[str, int | None]:
    """(media type, byte count) of an image given as a data: URL (or any URL)."""
    if isinstance(url, str) and url.startswith("data:"):
        head, _, payload = url[5:].partition(",")
        return head.split(";", 1)[0] or "image/*", len(payload) * 3 // 4
    return "image/*", None


@dataclass
class Context:
    """Per-request values a format needs while writing its bytes."""

    provider: str
    model: str  # the requested model without the fault suffix
    pacing: Pacing
    request_id: str = field(default_factory=lambda: f"req_{uuid.uuid4().hex}")
    created: int = field(default_factory=lambda: int(time.time()))
    blocked: bool = False
    options: dict[str, Any] = field(default_factory=dict)


class ProviderFormat:
    """Base class: one subclass per provider route family."""

    name: str = ""
    stream_media_type: str = "text/event-stream"
    needs_auth: bool = True

    # -- request side --------------------------------------------------------------
    def credentials(self, request: Request) -> str | None:
        """The API key presented, or None when none was sent."""
        auth = request.headers.get("authorization", "")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
        return None

    def precheck(self, request: Request) -> tuple[ErrorKind, str] | None:
        """Route-specific header checks done before the body is parsed."""
        return None

    def parse(self, body: Any, request: Request, path_model: str | None) -> ChatRequest:
        raise NotImplementedError

    def new_request_id(self) -> str:
        return f"req_{uuid.uuid4().hex}"

    def prepare(self, ctx: Context, chat: ChatRequest) -> None:
        """Fill per-response values (ids, flags) into ``ctx.options``."""
        ctx.options.update(chat.options)

    def response_headers(self, ctx: Context) -> dict[str, str]:
        return {"x-request-id": ctx.request_id}

    # -- responses -----------------------------------------------------------------
    def error(
        self,
        kind: ErrorKind,
        ctx: Context,
        message: str | None = None,
        *,
        status: int | None = None,
        key: str | None = None,
    ) -> Response:
        raise NotImplementedError

    def rate_limit_headers(self, ctx: Context) -> dict[str, str]:
        return {"retry-after": "0"}

    def complete(self, answer: Answer, ctx: Context) -> Any:
        """The non-streaming response body (JSON-able)."""
        raise NotImplementedError

    def plan(self, answer: Answer, ctx: Context) -> StreamPlan:
        raise NotImplementedError

    def encode_body(self, body: Any) -> bytes:
        return compact_json(body)
