"""available_models(): live lists with a key, the emulator's offline, and the defaults
with the reason when there is no key or the call fails."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from n3_notebook.core.catalog import clear_model_cache
from n3_notebook.core.defaults import DEFAULTS
from n3_notebook.core.offline import set_offline
from n3_notebook.emulator import EMULATOR_MODELS, Emulator, run_emulator
from n3_notebook.providers.available import available_models

SECRET = "k-available-123456"


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with run_emulator(token_delay=0, first_token_delay=0) as emulator:
        yield emulator


@pytest.fixture(autouse=True)
def clean(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for var in (
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "GEMINI_API_KEY",
        "GOOGLE_API_KEY",
        "GEMINI_BASE_URL",
        "N3_OFFLINE",
        "HTTPS_PROXY",
        "HTTP_PROXY",
        "ALL_PROXY",
    ):
        monkeypatch.delenv(var, raising=False)
    set_offline(False)
    clear_model_cache()
    yield
    set_offline(None)


async def test_live_with_a_key_and_defaults_without(monkeypatch, emu) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("OPENAI_BASE_URL", emu.base_url("openai"))
    openai, gemini = await available_models(["openai", "gemini"])
    assert openai.source == "live" and openai.reason is None
    assert [m.id for m in openai.models] == EMULATOR_MODELS["openai"]
    assert gemini.source == "defaults" and "GEMINI_API_KEY" in (gemini.reason or "")
    assert gemini.models[0].id == DEFAULTS["gemini"].model
    assert gemini.tiers["reasoning"] == DEFAULTS["gemini"].reasoning


async def test_a_failed_call_falls_back_to_the_defaults_with_the_reason(monkeypatch) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{port}/v1")
    (openai,) = await available_models(["openai"], timeout=10)
    assert openai.source == "defaults" and "could not reach" in (openai.reason or "")
    assert SECRET not in (openai.reason or "")


async def test_offline_lists_the_emulator(emu) -> None:
    set_offline(True)
    rows = {r.provider: r for r in await available_models(["anthropic", "emulator"])}
    assert rows["anthropic"].source == "emulator"
    assert [m.id for m in rows["anthropic"].models] == EMULATOR_MODELS["anthropic"]
    assert [m.id for m in rows["emulator"].models] == ["demo"]
