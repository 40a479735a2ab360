"""What a request cost, from the maintained genai-prices database (no table kept by hand).

User overrides (USD per million input / output tokens) win; a model the database does not
know is None ("unknown"), never a guess."""

from __future__ import annotations

import functools
import math
from typing import Any

from .errors import LLMError
from .registry import resolve_model
from .types import LLMResponse, Usage

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
    """Override (or add) the price of `provider:model` (an alias or a well-known model
    name is resolved first, so `set_price("flash", ...)` prices gemini:gemini-3.5-flash-lite)."""
    prices = (float(input_per_mtok), float(output_per_mtok))
    if not all(math.isfinite(p) and p >= 0 for p in prices):
        raise ValueError(f"prices must be finite and not negative, got {prices}")
    overrides[_key(model)] = prices


def clear_price(model: str) -> None:
    """Forget an override (the database price applies again)."""
    overrides.pop(_key(model), None)


def _key(model: str) -> str:
    try:
        provider, name = resolve_model(model)
    except LLMError:
        return model.strip()
    return f"{provider}:{name}" if name else model.strip()


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
    rates = _flat_rates(provider_id, model)
    if rates is UNKNOWN:
        return None
    if rates is not None:
        per_request, per_input, per_output = rates
        return per_request + usage.input_tokens * per_input + usage.output_tokens * per_output
    return _lookup(provider_id, model, usage.input_tokens, usage.output_tokens)


#: _flat_rates' answer for a model genai-prices does not know (so no lookup is tried)
UNKNOWN = (math.nan, math.nan, math.nan)


@functools.lru_cache(maxsize=512)
def _flat_rates(provider_id: str, model: str) -> tuple[float, float, float] | None:
    """(USD per request, per input token, per output token) of a model with one flat price
    (no tiers by prompt size, no dated price changes), where a usage's price is affine in
    its token counts: then pricing a call is a multiplication instead of genai-prices' full
    computation for every new pair of counts (the call log prices every request). UNKNOWN
    for a model genai-prices does not know; None for any other, priced by _lookup."""
    try:  # a runtime dependency, imported on first use: its import dominates startup
        from genai_prices.data_snapshot import get_snapshot
        from genai_prices.types import ModelPrice, TieredPrices
    except ImportError:
        return UNKNOWN
    try:
        _, info = get_snapshot().find_provider_model(model, None, provider_id, None)
    except (LookupError, ValueError):
        return UNKNOWN
    prices = info.prices
    if not isinstance(prices, ModelPrice):
        return None
    if any(isinstance(value, TieredPrices) for value in vars(prices).values()):
        return None
    base = _lookup(provider_id, model, 0, 0)
    million_in = _lookup(provider_id, model, 1_000_000, 0)
    million_out = _lookup(provider_id, model, 0, 1_000_000)
    if base is None or million_in is None or million_out is None:
        return None
    return base, (million_in - base) / 1e6, (million_out - base) / 1e6


@functools.lru_cache(maxsize=512)
def _lookup(provider_id: str, model: str, input_tokens: int, output_tokens: int) -> float | None:
    try:  # a runtime dependency, imported on first use: its import dominates startup
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


def response_cost(
    response: LLMResponse | None, provider: str | None = None, model: str | None = None
) -> float | None:
    """USD for one answer: the price of the model asked for (`provider`, `model`), else of
    the model the server says answered (e.g. a dated snapshot); None when neither is known."""
    if response is None:
        return None
    provider = provider or response.provider
    for name in dict.fromkeys(m for m in (model, response.model) if m):
        price = cost(provider, name, response.usage)
        if price is not None:
            return price
    return None
