"""`%llm models [provider]`: what each provider offers, from its listing where it has one."""

from __future__ import annotations

from ..core import registry
from ..core.offline import is_offline, offline_models
from ..core.sync import run_sync
from ..providers.ollama import OllamaProvider
from .display import Table
from .errors import CellError

__all__ = ["list_models"]


def list_models(provider: str | None) -> Table:
    rows: list[tuple[str, str, str]] = []
    names = [provider] if provider else registry.provider_names()
    for name in names:
        try:
            cls = registry.get_provider_class(name)
        except Exception as exc:
            raise CellError(str(exc), "Unknown provider") from None
        if name == "emulator":
            source, models = "emulator", ["demo"]
        elif is_offline():
            source, models = "emulator", offline_models(name)
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


async def _ollama_tags() -> list[str]:
    ollama = OllamaProvider(timeout=2.0)
    try:
        return [str(m.get("name") or m.get("model")) for m in await ollama.list_models()]
    finally:
        await ollama.aclose()


def _ollama_models() -> tuple[str, list[str]]:
    try:
        return "ollama /api/tags", run_sync(_ollama_tags)
    except Exception as exc:
        return f"unreachable ({type(exc).__name__})", []
