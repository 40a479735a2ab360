"""What `%llm models [provider]` shows, without IPython: per provider, the live list when
its key is set, the emulator's list in offline mode, and otherwise (no key, or the call
failed) the current defaults with the reason."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterable
from dataclasses import dataclass, field

from ..core.catalog import ModelInfo
from ..core.defaults import DEFAULTS, TIERS
from ..core.errors import LLMError
from ..core.offline import is_offline
from ..core.redact import redact
from ..core.registry import get_provider_class, provider_names

__all__ = ["ProviderModels", "available_models"]

LISTING_TIMEOUT = 10.0


@dataclass(slots=True)
class ProviderModels:
    """One provider's models and where the list came from: "live" (its models endpoint),
    "emulator" (offline mode), or "defaults" (no key, or the call failed: see `reason`)."""

    provider: str
    models: list[ModelInfo]
    source: str
    reason: str | None = None
    tiers: dict[str, str] = field(default_factory=dict)


async def available_models(
    providers: Iterable[str] | None = None, *, timeout: float = LISTING_TIMEOUT
) -> list[ProviderModels]:
    """Each provider's models (all known providers by default), asked concurrently."""
    names = list(providers) if providers else provider_names()
    return list(await asyncio.gather(*(_one(name, timeout) for name in names)))


async def _one(name: str, timeout: float) -> ProviderModels:
    cls = get_provider_class(name)
    key = cls.name
    tiers = {t: getattr(DEFAULTS[key], t) for t in TIERS} if key in DEFAULTS else {}
    if key == "emulator":  # the offline demo route answers to one name
        return ProviderModels(key, [ModelInfo(cls.default_model)], "emulator", None, tiers)
    offline = is_offline()
    if not offline and cls.requires_key and not any(os.environ.get(v) for v in cls.env_keys):
        reason = f"no key: {cls.env_keys[0]} is not set"
        return _defaults(cls.name, cls.default_model, tiers, reason)
    try:
        async with asyncio.timeout(timeout):
            async with cls() as provider:
                models = await provider.list_models()
    except TimeoutError:
        return _defaults(cls.name, cls.default_model, tiers, f"no answer within {timeout:g} s")
    except (LLMError, NotImplementedError) as exc:
        return _defaults(cls.name, cls.default_model, tiers, redact(str(exc)))
    return ProviderModels(cls.name, models, "emulator" if offline else "live", None, tiers)


def _defaults(provider: str, default: str, tiers: dict[str, str], reason: str) -> ProviderModels:
    names = list(dict.fromkeys([default, *tiers.values()]))
    return ProviderModels(provider, [ModelInfo(n) for n in names if n], "defaults", reason, tiers)
