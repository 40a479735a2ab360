from __future__ import annotations

import pytest

from n3_notebook import RetryConfig, create_provider
from n3_notebook.core import pricing
from n3_notebook.core.registry import resolve_model
from n3_notebook.emulator import run_emulator

FAKE_KEY = "k-chain-test-FAKE-0123456789"


@pytest.fixture(scope="module")
def emu():
    with run_emulator(token_delay=0.002, first_token_delay=0.0) as e:
        yield e


@pytest.fixture(autouse=True)
def _reset_emulator(request):
    if "emu" in request.fixturenames:
        request.getfixturevalue("emu").reset()


@pytest.fixture(autouse=True)
def _no_price_overrides():
    saved = dict(pricing.overrides)
    pricing.overrides.clear()
    yield
    pricing.overrides.clear()
    pricing.overrides.update(saved)


class Factory:
    """A provider_factory for chains: one provider per model string, pointed at the emulator."""

    def __init__(self, emu) -> None:
        self.emu = emu
        self.made: dict[str, object] = {}
        self.calls = 0

    def __call__(self, spec: str):
        self.calls += 1
        if spec not in self.made:
            provider, _ = resolve_model(spec)
            self.made[spec] = create_provider(
                spec,
                api_key=None if provider == "ollama" else FAKE_KEY,
                base_url=self.emu.base_url(provider),
                retry=RetryConfig(max_attempts=2, base_delay=0.01, max_delay=0.05),
            )
        return self.made[spec]

    async def aclose(self) -> None:
        for p in self.made.values():
            await p.aclose()


@pytest.fixture
async def factory(emu):
    f = Factory(emu)
    yield f
    await f.aclose()
