"""Which model a %%llm cell uses when none is named."""

from __future__ import annotations

import os

import httpx

from ..core.offline import is_offline
from ..core.registry import get_provider_class
from ..providers.ollama import DEFAULT_HOST, normalize_host

DEMO_MODEL = "emulator:demo"
KEYED_PROVIDERS = ("openai", "anthropic", "gemini", "cohere")
DEMO_HINT = (
    "No model named and no API key found, so this is the offline demo model (emulator:demo). "
    "To use a real model set e.g. OPENAI_API_KEY and write `%%llm openai:fast`, or "
    "run a local Ollama."
)


def provider_with_key() -> str | None:
    """provider:default_model of the first provider whose key variable is set."""
    for name in KEYED_PROVIDERS:
        cls = get_provider_class(name)
        if any(os.environ.get(var) for var in cls.env_keys):
            return f"{name}:{cls.default_model}"
    return None


async def local_ollama_model(timeout: float = 0.3) -> str | None:
    """ollama:<first model> if an Ollama server answers on OLLAMA_HOST (or the default)."""
    host = normalize_host(os.environ.get("OLLAMA_HOST") or DEFAULT_HOST)
    try:
        async with httpx.AsyncClient(timeout=timeout, trust_env=False) as client:
            r = await client.get(f"{host}/api/tags")
            if r.status_code != 200:
                return None
            models = r.json().get("models") or []
    except (httpx.HTTPError, ValueError):
        return None
    if not models:
        return None
    return f"ollama:{models[0].get('name') or models[0].get('model')}"


async def default_model(configured: str | None) -> tuple[str, str | None]:
    """(model spec, hint or None): configured → offline demo → keyed provider → Ollama → demo."""
    if configured:
        return configured, None
    if is_offline():
        return DEMO_MODEL, None
    keyed = provider_with_key()
    if keyed:
        return keyed, None
    local = await local_ollama_model()
    if local:
        return local, None
    return DEMO_MODEL, DEMO_HINT
