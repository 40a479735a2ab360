"""`%llm models [provider]` and `%llm doctor`: the live model lists (the defaults with the
reason when a list cannot be had) and the doctor's table, awaited on the kernel's loop."""

from __future__ import annotations

import shlex
from typing import Any

from ..core import registry
from ..core.catalog import ModelInfo
from ..core.errors import LLMError
from ..core.sync import run_sync
from ..doctor import DoctorReport, run_doctor
from ..doctor.run import DEFAULT_TIMEOUT
from ..providers.available import ProviderModels, available_models
from .display import Table
from .errors import CellError

__all__ = ["doctor_line", "list_models", "models_line", "models_table", "run_doctor_line"]

HEADER = ("provider", "model", "source", "details")


async def models_table(provider: str | None) -> Table:
    """Each provider's models: live with a key, the emulator's offline, else the current
    defaults and why; then the tiers (`provider:fast`...) and the aliases."""
    names = [_provider_name(provider)] if provider else registry.provider_names()
    rows: list[tuple[str, str, str, str]] = []
    for listed in await available_models(names):
        rows += _rows(listed)
    rows += [
        (target.split(":", 1)[0], f"{alias} → {target}", "alias", "")
        for alias, target in sorted(registry.aliases.items())
        if not provider or target.startswith(names[0] + ":")
    ]
    return Table(HEADER, rows)


def _provider_name(name: str) -> str:
    try:
        return registry.get_provider_class(name).name
    except LLMError as exc:
        raise CellError(str(exc), "Unknown provider") from None


def _rows(listed: ProviderModels) -> list[tuple[str, str, str, str]]:
    source = {"live": "live", "emulator": "emulator", "defaults": "default"}[listed.source]
    rows = [
        (listed.provider, m.id, source, listed.reason if i == 0 and listed.reason else _details(m))
        for i, m in enumerate(listed.models)
    ]
    rows += [
        (listed.provider, f"{listed.provider}:{tier} → {model}", "tier", "")
        for tier, model in listed.tiers.items()
    ]
    return rows


def _details(model: ModelInfo) -> str:
    parts = []
    if model.display_name and model.display_name not in (model.id, f"{model.id}:latest"):
        parts.append(model.display_name)
    if model.context_window:
        parts.append(f"{model.context_window:,} tokens")
    details = model.get("details")  # Ollama's: parameter count and quantization
    if isinstance(details, dict):
        parts += [
            str(details[k]) for k in ("parameter_size", "quantization_level") if details.get(k)
        ]
    parts += [c for c in model.capabilities if c != "chat"]
    return ", ".join(parts)


def list_models(provider: str | None) -> Table:
    """`%llm models` called as a plain magic (not awaited): on a private loop."""
    return run_sync(lambda: models_table(provider))


async def models_line(session: Any, line: str) -> Table:
    """The awaited form of `%llm models [provider]` (the input transformer's target)."""
    args = _args(line)[1:]
    if len(args) > 1:
        raise CellError("usage: %llm models [provider]", "Malformed %llm line")
    return await models_table(args[0] if args else None)


def _doctor_args(args: list[str]) -> tuple[list[str], float]:
    providers: list[str] = []
    timeout = DEFAULT_TIMEOUT
    rest = iter(args)
    for arg in rest:
        if arg == "--timeout":
            value = next(rest, "")
            try:
                timeout = float(value)
            except ValueError:
                timeout = 0
            if timeout <= 0:
                raise CellError(
                    f"--timeout needs a positive number of seconds, got {value!r}",
                    "Malformed %llm line",
                )
        elif arg.startswith("-"):
            raise CellError(
                "usage: %llm doctor [provider ...] [--timeout S]", "Malformed %llm line"
            )
        else:
            providers.append(_provider_name(arg))
    return providers, timeout


async def run_doctor_line(session: Any, line: str) -> DoctorReport:
    """The awaited form of `%llm doctor [provider ...] [--timeout S]`."""
    providers, timeout = _doctor_args(_args(line)[1:])
    return await run_doctor(providers or None, timeout=timeout)


def doctor_line(args: list[str]) -> DoctorReport:
    """`%llm doctor` called as a plain magic (not awaited): on a private loop."""
    providers, timeout = _doctor_args(args)
    return run_sync(lambda: run_doctor(providers or None, timeout=timeout))


def _args(line: str) -> list[str]:
    try:
        return shlex.split(line)
    except ValueError as exc:
        raise CellError(str(exc), "Malformed %llm line") from None
