"""What a provider's models endpoint says: ModelInfo, the per-process cache of listings,
and recognising a provider's "model not found" answer (each words it its own way)."""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ModelInfo",
    "cached_models",
    "clear_model_cache",
    "forget_models",
    "is_model_not_found",
    "models_hint",
    "store_models",
]


@dataclass(frozen=True, slots=True)
class ModelInfo(Mapping[str, Any]):
    """One model a provider lists. `id` is what `provider:id` takes; the other fields are
    filled where the provider says them. `raw` keeps the provider's own entry, and the
    object reads like it too (info["details"], info.get("size")), so code written against
    a provider's listing shape keeps working."""

    id: str
    display_name: str | None = None
    context_window: int | None = None
    max_output_tokens: int | None = None
    capabilities: tuple[str, ...] = ()  # e.g. "vision", "tools", "reasoning", "chat"
    created: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __getitem__(self, key: str) -> Any:
        return self.raw[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.raw)

    def __len__(self) -> int:
        return len(self.raw)

    def __hash__(self) -> int:
        return hash(self.id)

    def __bool__(self) -> bool:
        return True

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "display_name": self.display_name,
            "context_window": self.context_window,
            "max_output_tokens": self.max_output_tokens,
            "capabilities": list(self.capabilities),
            "created": self.created,
        }


_lock = threading.Lock()
_cache: dict[tuple[str, str, str], list[ModelInfo]] = {}


def _key(provider: str, base_url: str, api_key: str | None) -> tuple[str, str, str]:
    # The key itself is never stored: a digest tells one account's listing from another's.
    digest = hashlib.sha256((api_key or "").encode()).hexdigest()[:16]
    return provider, base_url, digest


def cached_models(provider: str, base_url: str, api_key: str | None) -> list[ModelInfo] | None:
    with _lock:
        found = _cache.get(_key(provider, base_url, api_key))
    return list(found) if found is not None else None


def store_models(
    provider: str, base_url: str, api_key: str | None, models: list[ModelInfo]
) -> None:
    with _lock:
        _cache[_key(provider, base_url, api_key)] = list(models)


def forget_models(provider: str, base_url: str, api_key: str | None) -> None:
    """Drop one listing (after a pull or a delete changed what the server has)."""
    with _lock:
        _cache.pop(_key(provider, base_url, api_key), None)


def clear_model_cache() -> None:
    """Forget every listing (the next list_models() asks the provider again)."""
    with _lock:
        _cache.clear()


# How each provider words an unknown model (404 as a rule; Cohere and some compatible
# servers answer 400). Matched against the provider's own message.
_NOT_FOUND = re.compile(
    r"model[`'\" :]+\S*[`'\"]? (?:does not exist|not found|is not found)"
    r"|^model: \S+$"
    r"|models/\S+ is not found"
    r"|unknown model|no such model|model_not_found|invalid model",
    re.IGNORECASE,
)


def is_model_not_found(status: int | None, message: str | None, code: Any = None) -> bool:
    """True when an error answer means "this model does not exist (for this key)"."""
    if status not in (400, 404):
        return False
    if isinstance(code, str) and code in ("model_not_found", "not_found_error"):
        return status == 404 or code == "model_not_found"
    return bool(message) and bool(_NOT_FOUND.search(message or ""))


def models_hint(provider: str) -> str:
    return (
        f"Run `%llm models {provider}` (or `await provider.list_models()`) to see the models "
        "this key can use, or name a current one such as "
        f"`{provider}:fast`."
    )
