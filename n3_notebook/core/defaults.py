"""Which model each provider uses when none is named, the `fast` / `smart` / `reasoning`
aliases, and warnings for deprecated models: the one place these names live.

How the table was chosen (2026-12-05): every name is listed on its provider's models page,
none is marked deprecated in genai-prices (the price catalogue we already depend on) or
has a shutdown date on the provider's deprecations page, and `fast` (the default) is the
cheapest current model of the provider's fast tier:
- OpenAI: the models page names GPT-6.2 Astra (flagship), GPT-6.2 Sol (balance) and GPT-6
  Luna (cost-sensitive, high volume); gpt-5-mini shuts down 2026-12-11, gpt-4o-mini
  2027-01-14, both with a GPT-6 replacement.
- Anthropic: Haiku 5.5, Sonnet 5.5 and Fable 5.1 ("for demanding reasoning") are the
  current line; Claude 3.5 Haiku was retired 2026-02-19.
- Gemini: 3.5 Flash-Lite is the fastest, cheapest 3.5 model and Google's named replacement
  for 2.5 Flash (shut down 2026-12-01); 3.8 Flash is the most capable Flash; Gemini 4
  Argon is the reasoning model. 2.0 Flash is deprecated in genai-prices.
- Cohere: Command A is the general model; Command R7B the small fast one; Command A
  Reasoning thinks before it answers.
- Ollama: small models from the Ollama library that most laptops run.

A model is deprecated when genai-prices marks it so or when REPLACEMENTS (from the
providers' deprecation pages) names its successor; either way the user is told once per
process, with the replacement when one is known.
"""

from __future__ import annotations

import functools
import threading
import warnings
from dataclasses import dataclass
from typing import Any

__all__ = [
    "DEFAULTS",
    "REPLACEMENTS",
    "TIERS",
    "ModelDeprecationWarning",
    "ProviderDefaults",
    "default_model_for",
    "deprecation_notice",
    "tier_model",
    "warn_if_deprecated",
]

#: The alias names every provider answers to: `openai:fast`, `gemini:reasoning`...
TIERS: tuple[str, ...] = ("fast", "smart", "reasoning")


@dataclass(frozen=True, slots=True)
class ProviderDefaults:
    """A provider's default model and its tiers (the default is the fast tier unless said)."""

    fast: str
    smart: str
    reasoning: str
    default: str = ""

    @property
    def model(self) -> str:
        return self.default or self.fast

    def tier(self, name: str) -> str | None:
        return getattr(self, name) if name in TIERS else None


DEFAULTS: dict[str, ProviderDefaults] = {
    "openai": ProviderDefaults("gpt-6-luna", "gpt-6.2-sol", "gpt-6.2-astra"),
    "anthropic": ProviderDefaults("claude-haiku-5-5", "claude-sonnet-5-5", "claude-fable-5-1"),
    "gemini": ProviderDefaults("gemini-3.5-flash-lite", "gemini-3.8-flash", "gemini-4-argon"),
    "cohere": ProviderDefaults(
        "command-r7b-12-2024",
        "command-a-03-2025",
        "command-a-reasoning-08-2025",
        default="command-a-03-2025",
    ),
    "ollama": ProviderDefaults("llama3.2", "qwen3", "deepseek-r1"),
}

#: provider -> {deprecated model: the provider's recommended replacement}.
REPLACEMENTS: dict[str, dict[str, str]] = {
    "openai": {
        "gpt-4o-mini": "gpt-6-luna",
        "gpt-4o": "gpt-6.2-sol",
        "gpt-4.1-mini": "gpt-6-luna",
        "gpt-4.1": "gpt-6.2-sol",
        "gpt-5-mini": "gpt-6.1-terra",
        "gpt-5-nano": "gpt-6-luna",
        "gpt-5": "gpt-6.1-sol",
        "o3-mini": "gpt-6.2-sol",
        "o4-mini": "gpt-6.2-sol",
        "gpt-3.5-turbo": "gpt-6-luna",
    },
    "anthropic": {
        "claude-3-5-haiku-latest": "claude-haiku-5-5",
        "claude-3-5-haiku-20241022": "claude-haiku-5-5",
        "claude-3-5-sonnet-latest": "claude-sonnet-5-5",
        "claude-3-5-sonnet-20241022": "claude-sonnet-5-5",
        "claude-3-7-sonnet-latest": "claude-sonnet-5-5",
        "claude-3-haiku-20240307": "claude-haiku-5-5",
    },
    "gemini": {
        "gemini-2.0-flash": "gemini-3.5-flash-lite",
        "gemini-2.0-flash-001": "gemini-3.5-flash-lite",
        "gemini-2.0-flash-lite": "gemini-3.5-flash-lite",
        "gemini-1.5-flash": "gemini-3.5-flash-lite",
        "gemini-1.5-pro": "gemini-3.8-flash",
        "gemini-2.5-flash": "gemini-3.5-flash-lite",
        "gemini-2.5-pro": "gemini-3.8-flash",
    },
    "cohere": {
        "command-r-plus": "command-a-03-2025",
        "command": "command-a-03-2025",
        "command-light": "command-r7b-12-2024",
    },
}

# Our provider names -> genai-prices provider ids.
_PRICE_PROVIDERS = {
    "openai": "openai",
    "anthropic": "anthropic",
    "gemini": "google",
    "cohere": "cohere",
}

_warned: set[tuple[str, str]] = set()
_lock = threading.Lock()


class ModelDeprecationWarning(UserWarning):
    """The model asked for is deprecated or retired by its provider."""


def default_model_for(provider: str) -> str:
    """The model a provider uses when none is named ("" for a provider we have no row for)."""
    row = DEFAULTS.get(provider)
    return row.model if row else ""


def tier_model(provider: str, name: str) -> str | None:
    """The model behind `provider:fast|smart|reasoning`, or None when `name` is no tier."""
    row = DEFAULTS.get(provider)
    return row.tier(name) if row else None


@functools.lru_cache(maxsize=256)
def _catalogue_deprecated(provider: str, model: str) -> bool:
    provider_id = _PRICE_PROVIDERS.get(provider)
    if provider_id is None:
        return False
    try:
        # a runtime dependency, imported on first use: its import dominates startup
        from genai_prices import data_snapshot
    except ImportError:
        return False
    try:
        snapshot: Any = data_snapshot.get_snapshot()
        found = snapshot.find_provider_model(model, None, provider_id, None)
    except (LookupError, ValueError):
        return False
    info = found[1]
    return bool(info.deprecated) and _same_model(model, info.id)


def _same_model(model: str, catalogue_id: str) -> bool:
    """genai-prices matches by prefix; count a hit only for the model itself or a dated or
    numbered snapshot of it (gemini-2.0-flash-001), not for a newer sibling it swallows."""
    if model == catalogue_id:
        return True
    rest = model[len(catalogue_id) :] if model.startswith(catalogue_id) else ""
    return rest[:1] == "-" and rest[1:].replace("-", "").isdigit()


def deprecation_notice(provider: str, model: str) -> str | None:
    """One line saying `model` is deprecated (and what replaces it), or None if it is not."""
    replacement = REPLACEMENTS.get(provider, {}).get(model)
    if replacement is None and not _catalogue_deprecated(provider, model):
        return None
    text = f"{provider}:{model} is deprecated by its provider and may stop answering"
    if replacement:
        return f"{text}; use {provider}:{replacement} instead."
    current = default_model_for(provider)
    hint = f" (the current default is {provider}:{current})" if current else ""
    return f"{text}; see `%llm models {provider}` for a current one{hint}."


def warn_if_deprecated(provider: str, model: str, *, stacklevel: int = 3) -> str | None:
    """Warn (once per process per model) when `model` is deprecated; returns the notice."""
    key = (provider, model)
    with _lock:
        if key in _warned:
            return None
    notice = deprecation_notice(provider, model)
    if notice is None:
        return None
    with _lock:
        if key in _warned:
            return None
        _warned.add(key)
    warnings.warn(notice, ModelDeprecationWarning, stacklevel=stacklevel)
    return notice


def reset_warnings() -> None:
    """Forget which deprecation warnings were given (for tests)."""
    with _lock:
        _warned.clear()
