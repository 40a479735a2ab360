"""%llm line commands: providers, models, doctor, alias, unalias, cancel, last, reset,
offline, cache.

A command is a function (session, args) -> what the cell shows; add one to COMMANDS and
to HELP. (`%llm config` lives on the magics: it lists their configuration.)"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from ..core import registry
from ..core.cache import response_cache
from ..core.errors import ConfigurationError
from ..core.offline import is_offline, set_offline
from ..core.redact import mask_url
from ..doctor import DoctorReport
from .defaults import provider_with_key
from .display import Table
from .errors import CellError
from .listing import doctor_line, list_models
from .log_commands import dashboard_command, log_command
from .session import NotebookSession

__all__ = ["COMMANDS", "HELP"]

HELP = """n3_notebook: stream LLM answers into the notebook.

%%llm [MODEL ...] [-s SYSTEM] [-t TEMP] [-n MAX_TOKENS] [-p key=value ...]
      [-f markdown|text|code|json|html] [-o VAR] [--background] [--no-widget]
      [--timeout S] [--chat] [--repeat N]
    The cell body is the prompt; {name} and {expr} are filled from the notebook
    ({{ and }} are literal braces). MODEL is provider:model (openai, anthropic, gemini,
    cohere, ollama, emulator) or an alias. Several models stream side by side.

%llm providers            providers, whether a key is set, base URL, default model
%llm models [provider]    the models each key can use (live listing; offline: the
                          emulator's; otherwise the defaults and why), tiers, aliases
%llm doctor [provider ...] [--timeout S]
                          what works from here: key, proxy, DNS, TCP, TLS, models call,
                          default model, clock; a next step for every failure
%llm alias NAME MODEL     define an alias        %llm unalias NAME
%llm cancel [all]         cancel the latest (or every) running request
%llm last                 the last answer        %llm reset   forget the chat history
%llm config               current settings
%llm offline on|off|auto  use the emulator (auto: only when no provider key is set)
%llm cache on|off|clear|stats   the response cache for every cell (--cache: one cell)
%llm log [-n N] [--model M] [--search TEXT] [--since 1h] [--full] [-o VAR]
                          the last calls from the call log (every request is logged)
%llm log off|on|status    stop or resume logging calls
%llm dashboard [--since 1h] [--live]
                          per model: requests, errors, latency, tokens, cost, cache hits

%%llm --over ROWS [MODEL ...] [-o VAR] [--cache]
    The cell is a template filled from each row of ROWS (a DataFrame, a list of dicts,
    or of strings: {row}); several models compare over the dataset.
"""

Command = Callable[[NotebookSession, list[str]], Any]


def _help(session: NotebookSession, args: list[str]) -> None:
    print(HELP)


def _providers(session: NotebookSession, args: list[str]) -> Table:
    rows = []
    for name in registry.provider_names():
        cls = registry.get_provider_class(name)
        key_vars = ", ".join(cls.env_keys) or "—"
        has_key = any(os.environ.get(v) for v in cls.env_keys)
        key = "set" if has_key else ("not needed" if not cls.requires_key else "missing")
        if is_offline() or name == "emulator":
            base = "offline emulator"
        else:
            env_base = next((os.environ[v] for v in cls.env_base_urls if v in os.environ), "")
            base = mask_url(env_base or cls.default_base_url or "")
        rows.append((name, key, key_vars, base, cls.default_model))
    return Table(("provider", "key", "key variable", "base URL", "default model"), rows)


def _models(session: NotebookSession, args: list[str]) -> Table:
    return list_models(args[0] if args else None)


def _doctor(session: NotebookSession, args: list[str]) -> DoctorReport:
    return doctor_line(args)


def _alias(session: NotebookSession, args: list[str]) -> None:
    if len(args) != 2:
        raise CellError("usage: %llm alias NAME provider:model", "Malformed %llm line")
    try:
        registry.set_alias(args[0], args[1])
    except (ValueError, ConfigurationError) as exc:
        raise CellError(str(exc), "Bad alias") from None
    print(f"{args[0]} -> {args[1]}")


def _unalias(session: NotebookSession, args: list[str]) -> None:
    if len(args) != 1 or args[0] not in registry.aliases:
        raise CellError(f"no such alias: {' '.join(args)!r}", "Bad alias")
    registry.remove_alias(args[0])


def _cancel(session: NotebookSession, args: list[str]) -> None:
    if not session.running():
        print("nothing is running")
        return
    print(f"cancelled {session.cancel(everything=args[:1] == ['all'])} request(s)")


def _last(session: NotebookSession, args: list[str]) -> Any:
    if session.last is None:
        print("no answer yet")
    return session.last


def _reset(session: NotebookSession, args: list[str]) -> None:
    session.history.clear()
    print("chat history cleared")


def _offline(session: NotebookSession, args: list[str]) -> None:
    if args[:1] == ["auto"]:
        if provider_with_key() is None:
            set_offline(True)
            print(
                "Offline mode: no provider key is set, so the bundled emulator answers for "
                "every provider."
            )
        else:
            set_offline(False)
            print(
                "Online: real providers for the keys that are set; a model without its key "
                "is an error."
            )
    elif args[:1] == ["on"]:
        set_offline(True)
        print("offline mode on: every provider uses the bundled emulator")
    elif args[:1] == ["off"]:
        set_offline(False)
        print("offline mode off")
    elif not args:
        print(f"offline mode is {'on' if is_offline() else 'off'}")
    else:
        raise CellError("usage: %llm offline on|off|auto", "Malformed %llm line")


def _cache(session: NotebookSession, args: list[str]) -> Any:
    cache = response_cache()
    if args[:1] == ["on"]:
        session.settings.cache = True
        print(f"response cache on: repeated requests are answered from {cache.path}")
    elif args[:1] == ["off"]:
        session.settings.cache = False
        print("response cache off (cells with --cache still use it)")
    elif args[:1] == ["clear"]:
        print(f"removed {cache.clear()} cached answer(s)")
    elif args[:1] in (["stats"], []):
        s = cache.stats()
        rows = [
            ("state", "on" if session.settings.cache else "off (per cell: --cache)"),
            ("file", s.path),
            ("entries", s.entries),
            ("size", f"{s.size_bytes / 1024:.1f} KiB"),
            ("hits / misses (this kernel)", f"{s.hits} / {s.misses}"),
            ("written (this kernel)", s.writes),
        ]
        if s.error:
            rows.append(("bypassed because", s.error))
        return Table(("cache", "value"), rows)
    else:
        raise CellError("usage: %llm cache on|off|clear|stats", "Malformed %llm line")
    return None


COMMANDS: dict[str, Command] = {
    "help": _help,
    "providers": _providers,
    "models": _models,
    "doctor": _doctor,
    "alias": _alias,
    "unalias": _unalias,
    "cancel": _cancel,
    "last": _last,
    "reset": _reset,
    "offline": _offline,
    "cache": _cache,
    "log": log_command,
    "dashboard": dashboard_command,
}
