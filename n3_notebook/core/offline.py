"""Offline mode: every provider talks to the bundled emulator on loopback.

On when the environment variable N3_OFFLINE is 1/true/yes/on, or after set_offline(True)
(what `%llm offline on` calls). The emulator is started lazily, once per process."""

from __future__ import annotations

import os

OFFLINE_ENV = "N3_OFFLINE"
_TRUE = {"1", "true", "yes", "on"}
_override: bool | None = None


def set_offline(enabled: bool | None) -> None:
    """Force offline mode on or off for this process; None goes back to the environment."""
    global _override
    _override = enabled


def is_offline() -> bool:
    if _override is not None:
        return _override
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in _TRUE


def offline_models(provider: str) -> list[str]:
    """The models the emulator answers for a provider's route (loaded on first use, like
    the emulator itself)."""
    # lazy startup: the emulator and its server stack load only when offline mode is used
    from ..emulator import EMULATOR_MODELS

    return list(EMULATOR_MODELS.get(provider, []))


def offline_endpoint(provider: str) -> tuple[str, str]:
    """(base_url, api_key) of the process's emulator for a provider, starting it if needed."""
    # lazy startup, as above
    from ..emulator import OFFLINE_API_KEY, get_offline_emulator

    emu = get_offline_emulator()
    return emu.base_url(provider), OFFLINE_API_KEY
