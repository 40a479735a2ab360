"""`%llm models [provider]`: what each provider offers, from its listing where it has one."""

from __future__ import annotations

from typing import Any

from ..core import registry
from ..core.offline import is_offline


def list_models(provider: str | None) -> Any:
    from .magics import Table

    rows: list[tuple[str, str, str]] = []
    names = [provider] if provider else registry.provider_names()
    for name in names:
        try:
            cls = registry.get_provider_class(name)
        except Exception as exc:
            from .errors import CellError

            raise CellError(str(exc), "Unknown provider") from None
        if name == "emulator" or is_offline():
            from ..emulator import EMULATOR_MODELS

            source = "emulator"
            models = EMULATOR_MODELS.get("openai" if name == "emulator" else name, [])
            if name == "emulator":
                models = ["demo"]
        elif name == "ollama":
            source, models = _ollama_models()
        else:
            source, models = "default", [cls.default_model]
        rows += [(name, m, source) for m in models]
    rows += [
        (target.split(":", 1)[0], f"{alias} → {target}", "alias")
        for alias, target in sorted(registry.aliases.items())
        if not provider or target.startswith(provider + ":")
    ]
    return Table(("provider", "model", "source"), rows)


def _ollama_models() -> tuple[str, list[str]]:
    from ..core.sync import run_sync
    from ..providers.ollama import OllamaProvider

    async def fetch() -> list[str]:
        async with OllamaProvider(timeout=2.0) as p:
            return [m.get("name") or m.get("model") for m in await p.list_models()]

    try:
        return "ollama /api/tags", run_sync(fetch)
    except Exception as exc:
        return f"unreachable ({type(exc).__name__})", []
