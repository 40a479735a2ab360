"""The models endpoints' paging, in each provider's documented shape.

- Anthropic ``GET /v1/models``: ``limit`` (1-1000, default 20), ``after_id`` /
  ``before_id``; answers ``data``, ``has_more``, ``first_id``, ``last_id``.
- Gemini ``GET /v1beta/models``: ``pageSize`` (default 50, at most 1000), ``pageToken``;
  answers ``models`` and, while more remain, ``nextPageToken``.
- Cohere ``GET /v1/models``: ``page_size`` (default 20, at most 1000), ``page_token``,
  ``endpoint`` (only models serving it), ``default_only``; answers ``models`` and
  ``next_page_token``.
- OpenAI ``GET /v1/models``: one page, ``{"object": "list", "data": [...]}``.

Page tokens are opaque to clients: here, the offset of the next entry, base64-encoded.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from starlette.requests import Request

from .faults import Fault, parse_fault
from .models import EMULATOR_MODELS, lookup_model

__all__ = [
    "PageError",
    "anthropic_page",
    "cohere_entries",
    "cohere_page",
    "gemini_page",
    "listing_fault",
]

FAULT_HEADER = "x-n3-fault"


class PageError(ValueError):
    """A paging parameter the real API would refuse (the route answers 400)."""


def _size(raw: str | None, default: int, name: str) -> int:
    if raw is None or raw == "":
        return default
    try:
        size = int(raw)
    except ValueError:
        raise PageError(f"{name} must be an integer, got {raw!r}") from None
    if size < 1:
        raise PageError(f"{name} must be at least 1, got {size}")
    return min(size, 1000)


def _token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"o:{offset}".encode()).decode().rstrip("=")


def _offset(token: str | None, name: str) -> int:
    if not token:
        return 0
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        if text.startswith("o:"):
            return max(0, int(text[2:]))
    except (ValueError, UnicodeDecodeError):
        pass
    raise PageError(f"invalid {name}")


def anthropic_page(
    request: Request, names: list[str], entry: Callable[[str], dict[str, Any]]
) -> dict[str, Any]:
    q = request.query_params
    limit = _size(q.get("limit"), 20, "limit")
    after, before = q.get("after_id"), q.get("before_id")
    if after and before:
        raise PageError("after_id and before_id cannot both be given")
    if after:
        start = names.index(after) + 1 if after in names else len(names)
        chosen = names[start : start + limit]
        has_more = start + limit < len(names)
    elif before:
        end = names.index(before) if before in names else 0
        chosen = names[max(0, end - limit) : end]
        has_more = end - limit > 0
    else:
        chosen = names[:limit]
        has_more = limit < len(names)
    data = [entry(n) for n in chosen]
    return {
        "data": data,
        "has_more": has_more,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
    }


def gemini_page(
    request: Request, names: list[str], entry: Callable[[str], dict[str, Any]]
) -> dict[str, Any]:
    q = request.query_params
    size = _size(q.get("pageSize"), 50, "pageSize")
    start = _offset(q.get("pageToken"), "page token")
    body: dict[str, Any] = {"models": [entry(n) for n in names[start : start + size]]}
    if start + size < len(names):
        body["nextPageToken"] = _token(start + size)
    return body


def cohere_entries() -> list[dict[str, Any]]:
    """Cohere's listing entries for the emulator's Cohere models (all serve chat)."""
    out = []
    for name in EMULATOR_MODELS["cohere"]:
        profile = lookup_model("cohere", name)
        assert profile is not None
        features = ["tools", "strict_tools", "json_mode", "json_schema"]
        if "reasoning" in name:
            features.append("reasoning")
        out.append(
            {
                "name": name,
                "endpoints": ["chat"],
                "finetuned": False,
                "context_length": profile.context_window,
                "tokenizer_url": f"https://storage.googleapis.com/cohere-public/tokenizers/{name}.json",
                "default_endpoints": ["chat"] if name == DEFAULT_COHERE_CHAT else [],
                "features": features,
            }
        )
    return out


DEFAULT_COHERE_CHAT = "command-a-03-2025"


def cohere_page(request: Request, entries: list[dict[str, Any]]) -> dict[str, Any]:
    q = request.query_params
    endpoint = q.get("endpoint")
    if endpoint:
        entries = [e for e in entries if endpoint in e["endpoints"]]
    if q.get("default_only", "").lower() == "true" and endpoint:
        entries = [e for e in entries if endpoint in e["default_endpoints"]]
    size = _size(q.get("page_size"), 20, "page_size")
    start = _offset(q.get("page_token"), "page_token")
    body: dict[str, Any] = {"models": entries[start : start + size]}
    if start + size < len(entries):
        body["next_page_token"] = _token(start + size)
    return body


def listing_fault(request: Request) -> Fault | None:
    """The status fault a listing request asked for with ``X-N3-Fault`` (invalid_key,
    rate_limit...), or None. A malformed spec raises FaultSpecError."""
    spec = request.headers.get(FAULT_HEADER)
    if not spec:
        return None
    fault = parse_fault(spec)
    return fault if fault.status is not None else None
