"""Short, safe texts for error messages: a bounded snippet of a body, an error body's
machine-readable code, the name of the HTTP timeout that ran out, and stream items that
are not JSON named by their text."""

from __future__ import annotations

from typing import Any

import httpx

from .errors import StreamProtocolError
from .fastjson import loads as fast_loads

__all__ = ["error_code", "http_timeout_text", "parse_json_line", "snippet", "snippet_text"]

SNIPPET_CHARS = 200  # characters of a body quoted in an error message at most


def snippet(body: bytes) -> str:
    """A body's text, whitespace collapsed, cut to SNIPPET_CHARS."""
    return snippet_text(body.decode("utf-8", "replace"))


def snippet_text(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= SNIPPET_CHARS else text[:SNIPPET_CHARS] + "…"


def error_code(payload: Any) -> Any:
    """The machine-readable code of an error body (OpenAI's error.code, Anthropic's
    error.type), if it has one."""
    err = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(err, dict):
        return err.get("code") or err.get("type")
    return None


def http_timeout_text(exc: httpx.TimeoutException) -> str:
    """Which HTTP timeout ran out, and its value when the request carries it."""
    kind = {
        httpx.ConnectTimeout: "connect",
        httpx.ReadTimeout: "read",
        httpx.WriteTimeout: "write",
        httpx.PoolTimeout: "pool",
    }.get(type(exc))
    try:
        seconds = (exc.request.extensions.get("timeout") or {}).get(kind)
    except RuntimeError:  # an error raised without its request
        seconds = None
    if kind is None:
        return type(exc).__name__
    return f"the HTTP {kind} timeout" + (f" of {seconds:g}s" if seconds else "") + " ran out"


def parse_json_line(provider: str, data: str | bytes) -> Any:
    """Parse one stream item, raising StreamProtocolError naming the bad line."""
    try:
        return fast_loads(data)
    except ValueError as exc:
        text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
        raise StreamProtocolError(
            f"malformed stream data: {snippet_text(text)!r}", provider=provider
        ) from exc
