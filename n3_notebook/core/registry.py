"""Model strings to providers: `create_provider("anthropic:claude-haiku-5-5")`.

Built-in providers, aliases (user-extensible), `provider:fast|smart|reasoning` (the
tiers of core.defaults), provider-name inference from well-known model prefixes, and
third-party providers from the `n3_notebook.providers` entry point group (name = a
BaseProvider subclass)."""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

from .base import BaseProvider
from .defaults import DEFAULTS, tier_model
from .errors import UnknownModelError

#: Gives the provider for a model string (chains and the service take one). A factory's
#: providers are borrowed: their owner (the notebook session, the service's pool, a test)
#: closes them.
ProviderFactory = Callable[[str], BaseProvider]

ENTRY_POINT_GROUP = "n3_notebook.providers"

_BUILTIN: dict[str, str] = {
    "openai": "n3_notebook.providers.openai:OpenAIProvider",
    "anthropic": "n3_notebook.providers.anthropic:AnthropicProvider",
    "gemini": "n3_notebook.providers.gemini:GeminiProvider",
    "cohere": "n3_notebook.providers.cohere:CohereProvider",
    "ollama": "n3_notebook.providers.ollama:OllamaProvider",
    "emulator": "n3_notebook.providers.emulator:EmulatorProvider",
}
PROVIDER_SYNONYMS: dict[str, str] = {"google": "gemini", "claude": "anthropic", "co": "cohere"}

DEFAULT_ALIASES: dict[str, str] = {
    "gpt-mini": f"openai:{DEFAULTS['openai'].fast}",
    "gpt": f"openai:{DEFAULTS['openai'].smart}",
    "haiku": f"anthropic:{DEFAULTS['anthropic'].fast}",
    "sonnet": f"anthropic:{DEFAULTS['anthropic'].smart}",
    "flash": f"gemini:{DEFAULTS['gemini'].fast}",
    "command": f"cohere:{DEFAULTS['cohere'].model}",
    "llama": f"ollama:{DEFAULTS['ollama'].fast}",
    "demo": "emulator:demo",
}
_PREFIXES: tuple[tuple[str, str], ...] = (
    ("gpt-", "openai"),
    ("o1", "openai"),
    ("o3", "openai"),
    ("o4", "openai"),
    ("chatgpt", "openai"),
    ("claude", "anthropic"),
    ("gemini", "gemini"),
    ("command", "cohere"),
)

_lock = threading.Lock()
_registry: dict[str, type[BaseProvider]] = {}
aliases: dict[str, str] = dict(DEFAULT_ALIASES)


def register_provider(name: str, cls: type[BaseProvider]) -> None:
    """Make `name:model` resolve to cls."""
    if not (isinstance(cls, type) and issubclass(cls, BaseProvider)):
        raise TypeError("a provider must be a subclass of n3_notebook.BaseProvider")
    with _lock:
        _registry[name.lower()] = cls


def _load(target: str) -> type[BaseProvider]:
    module, _, attr = target.partition(":")
    provider_class: type[BaseProvider] = getattr(importlib.import_module(module), attr)
    return provider_class


def _entry_points() -> dict[str, Any]:
    return {ep.name.lower(): ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def provider_names() -> list[str]:
    """Every provider name that resolves: built-in, registered and from entry points."""
    return sorted(set(_BUILTIN) | set(_registry) | set(_entry_points()))


def get_provider_class(name: str) -> type[BaseProvider]:
    key = PROVIDER_SYNONYMS.get(name.lower(), name.lower())
    with _lock:
        if key in _registry:
            return _registry[key]
    if key in _BUILTIN:
        cls = _load(_BUILTIN[key])
    else:
        eps = _entry_points()
        if key not in eps:
            raise UnknownModelError(
                f"Unknown provider {name!r}.",
                hint=f"Known providers: {', '.join(provider_names())}. Write provider:model, "
                "e.g. openai:fast.",
            )
        cls = eps[key].load()
    register_provider(key, cls)
    return cls


def resolve_model(spec: str) -> tuple[str, str | None]:
    """("provider", "model") for `provider:model`, an alias or a well-known model name."""
    text = spec.strip()
    if not text:
        raise UnknownModelError("An empty model name was given.", hint=_known_hint())
    if text in aliases:
        text = aliases[text]
    if ":" in text:
        provider, _, model = text.partition(":")
        provider = provider.strip().lower()
        provider = PROVIDER_SYNONYMS.get(provider, provider)
        if provider in _BUILTIN or provider in _registry or provider in _entry_points():
            model = model.strip()
            return provider, (tier_model(provider, model.lower()) or model) or None
    for prefix, provider in _PREFIXES:
        if text.startswith(prefix):
            return provider, text
    if text.lower() in _BUILTIN:
        return text.lower(), None
    raise UnknownModelError(f"Unknown model {spec!r}.", hint=_known_hint())


def _known_hint() -> str:
    shown = ", ".join(f"{k} ({v})" for k, v in sorted(aliases.items()))
    return (
        f"Use provider:model with a provider among {', '.join(provider_names())}, "
        f"or an alias: {shown}."
    )


def create_provider(spec: str, **kwargs: Any) -> BaseProvider:
    """A provider instance for a model string; kwargs go to the provider's constructor."""
    provider, model = resolve_model(spec)
    cls = get_provider_class(provider)
    return cls(model, **kwargs)


def set_alias(name: str, target: str) -> None:
    """Make `name` stand for `provider:model` (checked now)."""
    if ":" in name or not name.strip():
        raise ValueError("an alias is a plain name without ':'")
    resolve_model(target)
    aliases[name.strip()] = target.strip()


def remove_alias(name: str) -> None:
    if name not in aliases:
        raise KeyError(f"no alias {name!r}")
    del aliases[name]
