"""Which API keys an emulator accepts."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Literal

__all__ = ["ApiKeys", "KeyPolicy"]

ApiKeys = str | Iterable[str] | Mapping[str, str | Iterable[str]] | None


def _as_set(value: str | Iterable[str]) -> frozenset[str]:
    return frozenset([value]) if isinstance(value, str) else frozenset(value)


class KeyPolicy:
    """``None``: any non-empty key is accepted.  A str or an iterable of str: only those
    keys, on every route.  A mapping ``provider -> key(s)``: per provider (a provider
    missing from the mapping accepts any non-empty key)."""

    def __init__(self, api_keys: ApiKeys = None) -> None:
        self._all: frozenset[str] | None = None
        self._per: dict[str, frozenset[str]] = {}
        if api_keys is None:
            return
        if isinstance(api_keys, Mapping):
            self._per = {p: _as_set(v) for p, v in api_keys.items()}
        else:
            self._all = _as_set(api_keys)

    def check(
        self, provider: str, key: str | None
    ) -> Literal["auth_missing", "auth_invalid"] | None:
        if not key:
            return "auth_missing"
        allowed = self._per.get(provider, self._all)
        if allowed is not None and key not in allowed:
            return "auth_invalid"
        return None
