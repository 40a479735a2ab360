"""The call log prices every request: flat-priced models take a multiplication, and give
the same price genai-prices computes; tiered ones still go through genai-prices."""

from __future__ import annotations

import random
import time

import pytest

from n3_notebook.core import pricing
from n3_notebook.core.types import Usage

genai_prices = pytest.importorskip("genai_prices")

MODELS = [
    ("openai", "gpt-4o-mini"),
    ("openai", "gpt-4o"),
    ("anthropic", "claude-3-5-haiku-latest"),
    ("gemini", "gemini-2.0-flash"),
    ("gemini", "gemini-1.5-pro"),  # tiered: above 128k prompt tokens the price doubles
    ("cohere", "command-r"),
]


def _exact(provider: str, model: str, usage: Usage) -> float:
    calc = genai_prices.calc_price(
        genai_prices.Usage(input_tokens=usage.input_tokens, output_tokens=usage.output_tokens),
        model_ref=model,
        provider_id=pricing._PROVIDER_IDS[provider],
    )
    return float(calc.total_price)


@pytest.mark.parametrize(("provider", "model"), MODELS)
def test_the_price_is_genai_prices_own(provider: str, model: str) -> None:
    rng = random.Random(model)
    usages = [
        Usage.of(0, 0),
        Usage.of(1, 0),
        Usage.of(0, 1),
        Usage.of(127_999, 10),
        Usage.of(128_001, 10),
        Usage.of(300_000, 5_000),
    ]
    usages += [Usage.of(rng.randrange(0, 400_000), rng.randrange(0, 20_000)) for _ in range(30)]
    for usage in usages:
        got = pricing.cost(provider, model, usage)
        assert got == pytest.approx(_exact(provider, model, usage), rel=1e-9, abs=1e-12), usage


def test_tiered_models_are_not_flat() -> None:
    assert pricing._flat_rates("google", "gemini-1.5-pro") is None
    assert pricing._flat_rates("openai", "gpt-4o-mini") is not None
    assert pricing._flat_rates("openai", "no-such-model-anywhere") is pricing.UNKNOWN
    assert pricing.cost("openai", "no-such-model-anywhere", Usage.of(5, 5)) is None


def test_pricing_new_counts_is_cheap() -> None:
    pricing.cost("openai", "gpt-4o-mini", Usage.of(1, 1))
    t0 = time.perf_counter()
    for i in range(2000):
        pricing.cost("openai", "gpt-4o-mini", Usage.of(1000 + i, 2000 + i))
        pricing.cost("openai", "a-fine-tune-nobody-prices", Usage.of(1000 + i, 2000 + i))
    assert (time.perf_counter() - t0) / 4000 < 50e-6  # genai-prices' own: ~160 us each
