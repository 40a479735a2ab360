"""Each provider's models endpoint: the request, its paging and its entries as ModelInfo.

- OpenAI: GET {base}/models, `{"object": "list", "data": [...]}` (compatible servers may
  page with has_more/last_id and `after`).
- Anthropic: GET /v1/models?limit=N&after_id=X, pages end when has_more is false.
- Gemini: GET /v1beta/models?pageSize=N&pageToken=T, `nextPageToken` until absent; only
  models whose supportedGenerationMethods include generateContent can chat.
- Cohere: GET /v1/models?endpoint=chat&page_size=N&page_token=T, `next_page_token`.
- Ollama: GET /api/tags, one page.

Listings are cached per provider, base URL and key for the process's life."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from typing import Any

from ..core.base import BaseProvider
from ..core.catalog import ModelInfo, cached_models, store_models
from ..core.errors import StreamProtocolError
from ..core.http import RequestSpec
from ..core.metrics import RequestMetrics

__all__ = ["MAX_PAGES", "first_page", "list_models", "model_ids"]

MAX_PAGES = 100  # a server that keeps handing out page tokens is stopped here
DEFAULT_PAGE_SIZE = 1000

Page = tuple[list[ModelInfo], dict[str, str] | None]  # entries, params of the next page


def first_page(provider: BaseProvider, page_size: int = DEFAULT_PAGE_SIZE) -> RequestSpec:
    """The request for the first page of a provider's listing (the doctor sends it too)."""
    path, params = _ROUTES[_kind(provider)](provider, page_size)
    return RequestSpec("GET", path, params=params)


async def list_models(
    provider: BaseProvider, *, refresh: bool = False, page_size: int = DEFAULT_PAGE_SIZE
) -> list[ModelInfo]:
    """Every model the provider lists for this key, all pages, cached."""
    api_key = provider._api_key
    if not refresh:
        cached = cached_models(provider.name, provider.base_url, api_key)
        if cached is not None:
            return cached
    parse = _PARSERS[_kind(provider)]
    spec = first_page(provider, page_size)
    models: list[ModelInfo] = []
    seen: set[str] = set()
    for _ in range(MAX_PAGES):
        payload = await _get_json(provider, spec)
        entries, next_params = parse(payload)
        for info in entries:
            if info.id not in seen:
                seen.add(info.id)
                models.append(info)
        if not next_params:
            break
        spec = RequestSpec("GET", spec.path, params={**spec.params, **next_params})
    store_models(provider.name, provider.base_url, api_key, models)
    return models


def _kind(provider: BaseProvider) -> str:
    """Which listing a provider speaks: its own name, or that of the built-in adapter it
    extends (an OpenAI-compatible subclass lists like OpenAI)."""
    for cls in type(provider).__mro__:
        name = getattr(cls, "name", "")
        if name in _ROUTES:
            return name
    raise NotImplementedError(f"{type(provider).__name__} has no models listing")


async def _get_json(provider: BaseProvider, spec: RequestSpec) -> Any:
    rec = RequestMetrics(provider.name, provider.model, False, time.time())
    body = await provider._request_with_retries(spec, rec, None)
    try:
        return json.loads(body)
    except ValueError as exc:
        raise StreamProtocolError(
            f"the models listing is not JSON: {body[:200]!r}", provider=provider.name
        ) from exc


# ------------------------------------------------------------------ first-page routes
def _openai_route(p: BaseProvider, size: int) -> tuple[str, dict[str, str]]:
    return "/models", {}


def _anthropic_route(p: BaseProvider, size: int) -> tuple[str, dict[str, str]]:
    return "/v1/models", {"limit": str(min(size, 1000))}


def _gemini_route(p: BaseProvider, size: int) -> tuple[str, dict[str, str]]:
    version = getattr(p, "api_version", None) or "v1beta"
    return f"/{version}/models", {"pageSize": str(min(size, 1000))}


def _cohere_route(p: BaseProvider, size: int) -> tuple[str, dict[str, str]]:
    return "/v1/models", {"endpoint": "chat", "page_size": str(min(size, 1000))}


def _ollama_route(p: BaseProvider, size: int) -> tuple[str, dict[str, str]]:
    return "/api/tags", {}


# ------------------------------------------------------------------ parsers
def _entries(payload: Any, key: str) -> list[dict[str, Any]]:
    items = payload.get(key) if isinstance(payload, dict) else None
    if not isinstance(items, list):
        raise StreamProtocolError(f"the models listing has no {key!r} list")
    return [item for item in items if isinstance(item, dict)]


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _caps(*pairs: tuple[str, Any]) -> tuple[str, ...]:
    return tuple(name for name, present in pairs if present)


def _openai(payload: Any) -> Page:
    data = _entries(payload, "data")
    models = [
        ModelInfo(
            str(m["id"]),
            created=str(m["created"]) if m.get("created") is not None else None,
            context_window=_int(m.get("context_window") or m.get("max_model_len")),
            raw=m,
        )
        for m in data
        if m.get("id")
    ]
    more = payload.get("has_more") and models
    return models, ({"after": models[-1].id} if more else None)


def _anthropic(payload: Any) -> Page:
    data = _entries(payload, "data")
    models = []
    for m in data:
        if not m.get("id"):
            continue
        raw_caps = m.get("capabilities")
        caps: dict[str, Any] = raw_caps if isinstance(raw_caps, dict) else {}
        models.append(
            ModelInfo(
                str(m["id"]),
                display_name=m.get("display_name"),
                context_window=_int(m.get("max_input_tokens")),
                max_output_tokens=_int(m.get("max_tokens")),
                capabilities=_caps(
                    ("vision", _supported(caps.get("image_input"))),
                    ("reasoning", _supported(caps.get("thinking"))),
                ),
                created=m.get("created_at"),
                raw=m,
            )
        )
    last = payload.get("last_id") or (models[-1].id if models else None)
    return models, ({"after_id": str(last)} if payload.get("has_more") and last else None)


def _supported(value: Any) -> bool:
    if isinstance(value, dict):
        return bool(value.get("supported"))
    return bool(value)


def _gemini(payload: Any) -> Page:
    listed = isinstance(payload, dict) and payload.get("models") is not None
    data = _entries(payload, "models") if listed else []
    models = []
    for m in data:
        methods = m.get("supportedGenerationMethods") or []
        name = str(m.get("name") or "")
        if "generateContent" not in methods or not name:
            continue
        models.append(
            ModelInfo(
                name.removeprefix("models/"),
                display_name=m.get("displayName"),
                context_window=_int(m.get("inputTokenLimit")),
                max_output_tokens=_int(m.get("outputTokenLimit")),
                capabilities=_caps(("chat", True), ("reasoning", m.get("thinking"))),
                raw=m,
            )
        )
    token = payload.get("nextPageToken")
    return models, ({"pageToken": str(token)} if token else None)


def _cohere(payload: Any) -> Page:
    data = _entries(payload, "models")
    models = []
    for m in data:
        if not m.get("name"):
            continue
        features = set(m.get("features") or ())
        models.append(
            ModelInfo(
                str(m["name"]),
                context_window=_int(m.get("context_length")),
                capabilities=_caps(
                    ("chat", "chat" in (m.get("endpoints") or ())),
                    ("tools", features & {"tools", "strict_tools"}),
                    ("vision", "vision" in features),
                    ("reasoning", "reasoning" in features),
                ),
                raw=m,
            )
        )
    token = payload.get("next_page_token")
    return models, ({"page_token": str(token)} if token else None)


def _ollama(payload: Any) -> Page:
    data = _entries(payload, "models")
    models = []
    for m in data:
        name = str(m.get("name") or m.get("model") or "")
        if not name:
            continue
        details = m.get("details") if isinstance(m.get("details"), dict) else {}
        models.append(
            ModelInfo(
                name.removesuffix(":latest"),
                display_name=name,
                capabilities=tuple(m.get("capabilities") or ()),
                created=m.get("modified_at"),
                raw={**m, "details": details},
            )
        )
    return models, None


_ROUTES: dict[str, Callable[[BaseProvider, int], tuple[str, dict[str, str]]]] = {
    "openai": _openai_route,
    "emulator": _openai_route,
    "anthropic": _anthropic_route,
    "gemini": _gemini_route,
    "cohere": _cohere_route,
    "ollama": _ollama_route,
}
_PARSERS: dict[str, Callable[[Any], Page]] = {
    "openai": _openai,
    "emulator": _openai,
    "anthropic": _anthropic,
    "gemini": _gemini,
    "cohere": _cohere,
    "ollama": _ollama,
}


def model_ids(models: Iterable[ModelInfo]) -> set[str]:
    """Every name a listed model answers to (Ollama's `x` and `x:latest` both)."""
    out: set[str] = set()
    for m in models:
        out.add(m.id)
        if m.display_name and m.display_name.endswith(":latest"):
            out.add(m.display_name)
    return out
