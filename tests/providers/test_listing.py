"""list_models() on every provider against the emulator: every page, the cache, a wrong
key, "model not found" errors that point at %llm models, current defaults and tiers,
and deprecation warnings given once."""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import httpx
import pytest

from n3_notebook.core import registry
from n3_notebook.core.catalog import ModelInfo, clear_model_cache, is_model_not_found
from n3_notebook.core.defaults import (
    DEFAULTS,
    ModelDeprecationWarning,
    deprecation_notice,
    reset_warnings,
)
from n3_notebook.core.errors import AuthenticationError, ModelNotFoundError
from n3_notebook.emulator import EMULATOR_MODELS, Emulator, run_emulator
from n3_notebook.providers import (
    AnthropicProvider,
    CohereProvider,
    GeminiProvider,
    OllamaProvider,
    OpenAIProvider,
    listing,
)

KEY = "k-listing-123456"
CLASSES = (OpenAIProvider, AnthropicProvider, GeminiProvider, CohereProvider, OllamaProvider)


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with run_emulator(token_delay=0, first_token_delay=0) as emulator:
        yield emulator


@pytest.fixture(autouse=True)
def _fresh(emu: Emulator) -> None:
    emu.reset()
    clear_model_cache()


def _provider(cls, emu: Emulator, model: str | None = None, **kw):
    return cls(model, api_key=KEY, base_url=emu.base_url(cls.name), **kw)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.name)
async def test_every_page_is_read(cls, emu: Emulator) -> None:
    async with _provider(cls, emu) as p:
        models = await listing.list_models(p, page_size=2)
    ids = [m.id for m in models]
    assert ids == EMULATOR_MODELS[cls.name]
    assert all(isinstance(m, ModelInfo) for m in models)
    assert p.model in ids  # the emulator knows the current default
    paths = [r.path for r in emu.records]
    paged = cls.name in ("anthropic", "gemini", "cohere")
    assert len(paths) == ((len(ids) + 1) // 2 if paged else 1)


async def test_listing_details_where_the_provider_gives_them(emu: Emulator) -> None:
    async with _provider(GeminiProvider, emu) as p:
        gemini = {m.id: m for m in await p.list_models()}
    assert gemini["gemini-3.8-flash"].context_window == 1_048_576
    assert gemini["gemini-3.8-flash"].display_name == "Gemini 3.8 Flash"
    assert "chat" in gemini["gemini-3.8-flash"].capabilities
    async with _provider(CohereProvider, emu) as p:
        cohere = {m.id: m for m in await p.list_models()}
    assert {"chat", "tools"} <= set(cohere["command-a-03-2025"].capabilities)
    assert "reasoning" in cohere["command-a-reasoning-08-2025"].capabilities
    async with _provider(AnthropicProvider, emu) as p:
        anthropic = {m.id: m for m in await p.list_models()}
    assert anthropic["claude-haiku-5-5"].display_name == "Claude Haiku 5.5"
    async with _provider(OllamaProvider, emu) as p:
        ollama = await p.list_models()
    # an entry still reads like Ollama's own /api/tags object
    assert ollama[0]["name"] == f"{ollama[0].id}:latest" and "details" in ollama[0]


async def test_the_listing_is_cached_until_refresh(emu: Emulator) -> None:
    async with _provider(OpenAIProvider, emu) as p:
        first = await p.list_models()
        again = await p.list_models()
        assert first == again and len(emu.records) == 1
        await p.list_models(refresh=True)
        assert len(emu.records) == 2
    async with OpenAIProvider(api_key="k-other-key-99", base_url=emu.base_url("openai")) as p:
        await p.list_models()  # another key is another account: asked again
    assert len(emu.records) == 3


async def test_a_wrong_key_is_an_authentication_error(emu: Emulator) -> None:
    client = httpx.AsyncClient(headers={"X-N3-Fault": "invalid_key"})
    try:
        for cls in (OpenAIProvider, AnthropicProvider, GeminiProvider, CohereProvider):
            async with _provider(cls, emu, http_client=client) as p:
                with pytest.raises(AuthenticationError) as info:
                    await p.list_models()
            assert info.value.status_code in (400, 401)  # Gemini answers a bad key with 400
            assert KEY not in str(info.value)
    finally:
        await client.aclose()


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.name)
async def test_unknown_model_suggests_the_listing(cls, emu: Emulator) -> None:
    async with _provider(cls, emu, model="no-such-model-9") as p:
        with pytest.raises(ModelNotFoundError) as info:
            await p.agenerate("hi")
    assert f"%llm models {cls.name}" in str(info.value)
    assert info.value.provider_message  # the provider's own wording is kept


def test_not_found_wording_of_each_provider() -> None:
    assert is_model_not_found(404, "The model `x` does not exist or you do not have access")
    assert is_model_not_found(404, "model: claude-nope")
    assert is_model_not_found(404, "models/x is not found for API version v1beta")
    assert is_model_not_found(400, "invalid request: model 'x' not found, make sure ...")
    assert is_model_not_found(404, 'model "x" not found, try pulling it first')
    assert is_model_not_found(404, "whatever", code="model_not_found")
    assert not is_model_not_found(404, "no route")
    assert not is_model_not_found(401, "model 'x' not found")
    assert not is_model_not_found(400, "max_tokens is too large")


def test_defaults_and_tiers_come_from_one_table() -> None:
    for name, cls in (
        ("openai", OpenAIProvider),
        ("anthropic", AnthropicProvider),
        ("gemini", GeminiProvider),
        ("cohere", CohereProvider),
        ("ollama", OllamaProvider),
    ):
        assert cls.default_model == DEFAULTS[name].model
        for tier in ("fast", "smart", "reasoning"):
            assert registry.resolve_model(f"{name}:{tier}") == (name, getattr(DEFAULTS[name], tier))
            assert getattr(DEFAULTS[name], tier) in EMULATOR_MODELS[name]
        # no default is deprecated, by the catalogue or by our table
        assert deprecation_notice(name, cls.default_model) is None


def test_a_deprecated_model_warns_once_naming_the_replacement() -> None:
    reset_warnings()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):
            OpenAIProvider("gpt-4o-mini", api_key=KEY, base_url="http://127.0.0.1:9")
            GeminiProvider("gemini-2.0-flash", api_key=KEY, base_url="http://127.0.0.1:9")
    found = [str(w.message) for w in caught if w.category is ModelDeprecationWarning]
    assert len(found) == 2
    assert "openai:gpt-6-luna" in found[0] and "gemini:gemini-3.5-flash-lite" in found[1]


def test_catalogue_deprecation_without_a_known_replacement() -> None:
    # genai-prices marks gemini-2.0-flash-lite-001 deprecated; our table has no entry for it
    notice = deprecation_notice("gemini", "gemini-2.0-flash-lite-001")
    assert notice is not None and "%llm models gemini" in notice
    assert deprecation_notice("gemini", "gemini-2.5-flash-lite") is None


async def test_a_pull_refreshes_the_ollama_listing(emu: Emulator) -> None:
    async with _provider(OllamaProvider, emu) as p:
        await p.list_models()
        async for _ in p.pull_model("llama3.2"):
            pass
        await p.list_models()
    assert [r.path for r in emu.records] == ["/api/tags", "/api/pull", "/api/tags"]
