"""The emulator's model table and pacing (first-token latency and token rate).

Pacing precedence, per value: constructor argument, then the environment variables
``N3_EMULATOR_TOKEN_DELAY`` / ``N3_EMULATOR_FIRST_TOKEN_DELAY``, then the model's own
profile.  ``0`` means "as fast as possible".  A ``slow_first:S`` fault overrides the first
token delay of one request.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from .text import canonical_model

__all__ = [
    "DEMO_MODEL",
    "EMULATOR_MODELS",
    "ENV_FIRST_TOKEN_DELAY",
    "ENV_TOKEN_DELAY",
    "PROVIDERS",
    "ModelProfile",
    "Pacing",
    "delays_from_env",
    "lookup_model",
    "resolve_pacing",
]

ENV_TOKEN_DELAY = "N3_EMULATOR_TOKEN_DELAY"  # nosec B105  # a variable name, not a secret
ENV_FIRST_TOKEN_DELAY = "N3_EMULATOR_FIRST_TOKEN_DELAY"  # nosec B105  # likewise

PROVIDERS: tuple[str, ...] = ("openai", "anthropic", "gemini", "cohere", "ollama")

#: The model every route also answers for (it is what ``emulator:demo`` resolves to; it
#: is listed on the OpenAI-compatible route only).
DEMO_MODEL = "demo"


@dataclass(frozen=True)
class ModelProfile:
    provider: str
    name: str
    first_token_delay: float  # seconds until the first token
    tokens_per_second: float
    context_window: int = 128_000
    max_output_tokens: int = 8_192
    display_name: str = ""
    family: str = ""
    parameter_size: str = ""
    size_bytes: int = 0

    @property
    def token_delay(self) -> float:
        return 1.0 / self.tokens_per_second


_PROFILES: tuple[ModelProfile, ...] = (
    ModelProfile("openai", "gpt-4o-mini", 0.25, 90),
    ModelProfile("openai", "gpt-4o", 0.35, 60),
    ModelProfile("openai", "gpt-4.1-mini", 0.25, 85, context_window=1_047_576),
    ModelProfile("openai", "o3-mini", 0.6, 110, context_window=200_000),
    ModelProfile("openai", "gpt-6-luna", 0.2, 110, 1_050_000, 128_000, "GPT-6 Luna"),
    ModelProfile("openai", "gpt-6.2-sol", 0.35, 75, 1_050_000, 128_000, "GPT-6.2 Sol"),
    ModelProfile("openai", "gpt-6.2-astra", 0.6, 55, 1_050_000, 128_000, "GPT-6.2 Astra"),
    ModelProfile("openai", DEMO_MODEL, 0.1, 60, context_window=32_000),
    ModelProfile("anthropic", "claude-haiku-5-5", 0.3, 90, 1_000_000, 128_000, "Claude Haiku 5.5"),
    ModelProfile(
        "anthropic", "claude-sonnet-5-5", 0.45, 70, 1_000_000, 128_000, "Claude Sonnet 5.5"
    ),
    ModelProfile("anthropic", "claude-fable-5-1", 0.8, 50, 1_000_000, 128_000, "Claude Fable 5.1"),
    ModelProfile(
        "gemini", "gemini-3.5-flash-lite", 0.2, 150, 1_048_576, 65_536, "Gemini 3.5 Flash-Lite"
    ),
    ModelProfile("gemini", "gemini-3.8-flash", 0.3, 120, 1_048_576, 65_536, "Gemini 3.8 Flash"),
    ModelProfile("gemini", "gemini-4-argon", 0.7, 70, 1_048_576, 65_536, "Gemini 4 Argon"),
    ModelProfile("cohere", "command-r7b-12-2024", 0.2, 90, 128_000, 4_000),
    ModelProfile("cohere", "command-a-reasoning-08-2025", 0.6, 55, 256_000, 32_000),
    ModelProfile(
        "anthropic", "claude-3-5-haiku-latest", 0.35, 70, 200_000, 8_192, "Claude Haiku 3.5"
    ),
    ModelProfile(
        "anthropic", "claude-3-5-sonnet-latest", 0.5, 55, 200_000, 8_192, "Claude Sonnet 3.5"
    ),
    ModelProfile(
        "anthropic", "claude-sonnet-4-20250514", 0.55, 60, 200_000, 64_000, "Claude Sonnet 4"
    ),
    ModelProfile("gemini", "gemini-2.0-flash", 0.3, 120, 1_048_576, 8_192, "Gemini 2.0 Flash"),
    ModelProfile("gemini", "gemini-1.5-flash", 0.3, 110, 1_000_000, 8_192, "Gemini 1.5 Flash"),
    ModelProfile("gemini", "gemini-2.5-pro", 0.8, 70, 1_048_576, 65_536, "Gemini 2.5 Pro"),
    ModelProfile("cohere", "command-r-plus", 0.45, 50, 128_000, 4_000),
    ModelProfile("cohere", "command-r", 0.3, 70, 128_000, 4_000),
    ModelProfile("cohere", "command-a-03-2025", 0.4, 60, 256_000, 8_000),
    ModelProfile(
        "ollama",
        "llama3",
        0.15,
        35,
        8_192,
        2_048,
        family="llama",
        parameter_size="8.0B",
        size_bytes=4_661_224_676,
    ),
    ModelProfile(
        "ollama",
        "llama3.2",
        0.1,
        55,
        131_072,
        2_048,
        family="llama",
        parameter_size="3.2B",
        size_bytes=2_019_393_189,
    ),
    ModelProfile(
        "ollama",
        "qwen3",
        0.15,
        40,
        40_960,
        2_048,
        family="qwen3",
        parameter_size="8.2B",
        size_bytes=5_225_388_164,
    ),
    ModelProfile(
        "ollama",
        "deepseek-r1",
        0.2,
        35,
        131_072,
        2_048,
        family="qwen2",
        parameter_size="7.6B",
        size_bytes=4_683_075_271,
    ),
    ModelProfile(
        "ollama",
        "mistral",
        0.15,
        40,
        32_768,
        2_048,
        family="llama",
        parameter_size="7.2B",
        size_bytes=4_113_301_824,
    ),
    ModelProfile(
        "ollama",
        "qwen2.5",
        0.15,
        38,
        32_768,
        2_048,
        family="qwen2",
        parameter_size="7.6B",
        size_bytes=4_683_087_332,
    ),
)

#: provider -> model names served (and listed) on that provider's routes.
EMULATOR_MODELS: dict[str, list[str]] = {
    provider: [p.name for p in _PROFILES if p.provider == provider] for provider in PROVIDERS
}

_BY_NAME: dict[str, ModelProfile] = {p.name: p for p in _PROFILES}


def lookup_model(provider: str, model: str) -> ModelProfile | None:
    """The profile for ``model`` on ``provider``'s routes, or None (the route answers 404).

    Accepts the forms the real APIs accept (``models/x`` on Gemini, ``x:latest`` on
    Ollama) and ignores a fault suffix.  ``demo`` is served on every route.
    """
    name = canonical_model(model)
    if provider == "gemini" and ":" in name:
        return None
    if provider != "ollama" and model.split("~", 1)[0].endswith(":latest"):
        return None
    profile = _BY_NAME.get(name)
    if profile is None:
        return None
    if profile.provider == provider or profile.name == DEMO_MODEL:
        return profile
    return None


@dataclass(frozen=True)
class Pacing:
    first_token_delay: float
    token_delay: float

    def generation_time(self, tokens: int) -> float:
        """How long a non-streaming answer of ``tokens`` tokens takes to produce."""
        if tokens <= 0:
            return self.first_token_delay
        return self.first_token_delay + (tokens - 1) * self.token_delay


def _env_float(name: str) -> float | None:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number of seconds, got {raw!r}") from None
    if value < 0:
        raise ValueError(f"{name} must not be negative, got {raw!r}")
    return value


def delays_from_env() -> tuple[float | None, float | None]:
    """``(token_delay, first_token_delay)`` from the environment (None where unset)."""
    return _env_float(ENV_TOKEN_DELAY), _env_float(ENV_FIRST_TOKEN_DELAY)


def resolve_pacing(
    profile: ModelProfile,
    token_delay: float | None = None,
    first_token_delay: float | None = None,
) -> Pacing:
    """The pacing for one model given optional overrides (None keeps the model's own)."""
    return Pacing(
        first_token_delay=(
            profile.first_token_delay if first_token_delay is None else first_token_delay
        ),
        token_delay=profile.token_delay if token_delay is None else token_delay,
    )
