"""What a request cost, from the maintained genai-prices database (no table kept by hand).

User overrides (USD per million input / output tokens) win; a model the database does not
know is None ("unknown"), never a guess."""

from __future__ import annotations

import functools
from typing import Any

from .types import Usage

# Our provider names → genai-prices provider ids.
_PROVIDER_IDS = {
    "openai": "openai",
    "anthropic": "anthropic",
    "gemini": "google",
    "cohere": "cohere",
}

#: "provider:model" -> (USD per 1M input tokens, USD per 1M output tokens)
overrides: dict[str, tuple[float, float]] = {}


def set_price(model: str, input_per_mtok: float, output_per_mtok: float) -> None:
    """Override (or add) the price of `provider:model`."""
    overrides[model] = (float(input_per_mtok), float(output_per_mtok))


def cost(provider: str, model: str, usage: Usage | None) -> float | None:
    """USD for this usage, or None when the price is unknown."""
    if usage is None:
        return None
    key = f"{provider}:{model}"
    if key in overrides:
        i, o = overrides[key]
        return (usage.input_tokens * i + usage.output_tokens * o) / 1e6
    provider_id = _PROVIDER_IDS.get(provider)
    if provider_id is None:
        return None
    return _lookup(provider_id, model, usage.input_tokens, usage.output_tokens)


@functools.lru_cache(maxsize=512)
def _lookup(provider_id: str, model: str, input_tokens: int, output_tokens: int) -> float | None:
    try:
        from genai_prices import Usage as PriceUsage
        from genai_prices import calc_price
    except ImportError:
        return None
    try:
        calc: Any = calc_price(
            PriceUsage(input_tokens=input_tokens, output_tokens=output_tokens),
            model_ref=model,
            provider_id=provider_id,
        )
    except (LookupError, ValueError):
        return None
    return float(calc.total_price)
