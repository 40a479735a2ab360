"""The %%llm / %llm magics, their configuration (traitlets) and per-notebook state."""

from __future__ import annotations

import asyncio
import os
import shlex
from collections.abc import Callable
from typing import Any

from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from traitlets import Bool, Dict, Float, Int, Unicode, observe

from ..core import registry
from ..core.base import BaseProvider
from ..core.errors import ConfigurationError
from ..core.offline import is_offline, set_offline
from ..core.redact import mask_url
from ..core.types import Message
from .errors import CellError
from .handle import LLMHandle

_active: LLMMagics | None = None

HELP = """n3_notebook: stream LLM answers into the notebook.

%%llm [MODEL ...] [-s SYSTEM] [-t TEMP] [-n MAX_TOKENS] [-p key=value ...]
      [-f markdown|text|code|json|html] [-o VAR] [--background] [--no-widget]
      [--timeout S] [--chat] [--repeat N]
    The cell body is the prompt; {name} and {expr} are filled from the notebook
    ({{ and }} are literal braces). MODEL is provider:model (openai, anthropic, gemini,
    cohere, ollama, emulator) or an alias. Several models stream side by side.

%llm providers            providers, whether a key is set, base URL, default model
%llm models [provider]    known models (Ollama's and the emulator's listings, aliases)
%llm alias NAME MODEL     define an alias        %llm unalias NAME
%llm cancel [all]         cancel the latest (or every) running request
%llm last                 the last answer        %llm reset   forget the chat history
%llm config               current settings
%llm offline on|off|auto  use the emulator (auto: only when no provider key is set)
"""


def active() -> LLMMagics | None:
    return _active


@magics_class
class LLMMagics(Magics):
    """Configure with %config LLMMagics.default_model = "anthropic:claude-3-5-haiku-latest"."""

    default_model = Unicode("", help="Model used when a cell names none.").tag(config=True)
    aliases = Dict(help="Extra model aliases: name -> provider:model.").tag(config=True)
    max_history = Int(10, help="Exchanges sent back with --chat.").tag(config=True)
    max_concurrent = Int(10, help="Concurrent requests per provider.").tag(config=True)
    request_timeout = Float(60.0, help="HTTP timeout in seconds.").tag(config=True)
    stream_timeout = Float(300.0, help="Seconds a whole stream may take (0: none).").tag(
        config=True
    )
    chunk_timeout = Float(60.0, help="Seconds of silence allowed mid-stream (0: none).").tag(
        config=True
    )
    update_interval = Float(0.05, help="Seconds between widget frames.").tag(config=True)
    default_format = Unicode("markdown", help="markdown, text, code, json or html.").tag(
        config=True
    )
    show_hint = Bool(True, help="Say once when the offline demo model is used.").tag(config=True)
    prices = Dict(
        help="Price overrides, USD per million tokens: {'provider:model': [input, output]}."
    ).tag(config=True)

    def __init__(self, shell: Any = None, **kwargs: Any) -> None:
        super().__init__(shell=shell, **kwargs)
        self.providers: dict[tuple[Any, ...], BaseProvider] = {}
        self.history: list[tuple[str, str]] = []
        self.last: Any = None
        self.handles: list[LLMHandle] = []
        self.hinted = not self.show_hint
        self.errors: dict[int, str] = {}
        self.chains: dict[str, Any] = {}
        registry.aliases.update(self.aliases)
        if self.prices:
            self._prices_changed({"new": self.prices})

    @observe("prices")
    def _prices_changed(self, change: dict[str, Any]) -> None:
        from ..core.pricing import set_price

        for model, pair in change["new"].items():
            set_price(model, *pair)

    @observe("aliases")
    def _aliases_changed(self, change: dict[str, Any]) -> None:
        for name, target in change["new"].items():
            registry.set_alias(name, target)

    # ---------------------------------------------------------------- state
    def provider(self, spec: str) -> BaseProvider:
        """A provider for a model string, reused across cells (same loop, same mode).
        Raises ConfigurationError (unknown model, missing key)."""
        name, model = registry.resolve_model(spec)
        loop = asyncio.get_running_loop()
        key = (name, model, is_offline(), id(loop))
        if key not in self.providers:
            self.providers[key] = registry.get_provider_class(name)(
                model,
                max_concurrent=self.max_concurrent,
                timeout=self.request_timeout or None,
            )
        return self.providers[key]

    def provider_for(self, spec: str) -> BaseProvider:
        """provider(), with configuration errors shown as a short cell error."""
        try:
            return self.provider(spec)
        except ConfigurationError as exc:
            raise CellError(str(exc), type(exc).__name__) from None

    def history_messages(self) -> list[Message]:
        out: list[Message] = []
        for prompt, answer in self.history[-self.max_history :] if self.max_history else []:
            out += [Message("user", prompt), Message("assistant", answer)]
        return out

    def remember(self, prompt: str, answer: str) -> None:
        self.history.append((prompt, answer))
        if self.max_history and len(self.history) > self.max_history:
            del self.history[: -self.max_history]

    def track(self, handle: LLMHandle) -> None:
        self.handles = [h for h in self.handles if not h.done()]
        self.handles.append(handle)

    # ---------------------------------------------------------------- magics
    @cell_magic
    def llm(self, line: str, cell: str) -> Any:
        """%%llm: normally rewritten to an awaited call by the input transformer; called
        directly (e.g. run_cell_magic), it runs in the background on the running loop."""
        from .runner import run_llm_cell

        return _run_direct(lambda: run_llm_cell(line, cell), line)

    @cell_magic("chain")
    def chain_cell(self, line: str, cell: str) -> Any:
        """%%chain: define and run a prompt chain (see `%chain` for the commands)."""
        from .runner import run_chain_cell

        return _run_direct(lambda: run_chain_cell(line, cell), line)

    @line_magic("chain")
    def chain_line(self, line: str) -> Any:
        """%chain list | show NAME | export NAME PATH | run NAME [key=value ...]"""
        from .chain_magics import chain_line

        return chain_line(self, line)

    @line_magic("llm")
    def llm_line(self, line: str) -> Any:
        try:
            argv = shlex.split(line)
        except ValueError as exc:
            raise CellError(str(exc), "Malformed %llm line") from None
        if not argv:
            print(HELP)
            return None
        command, args = argv[0], argv[1:]
        handler: Callable[[list[str]], Any] | None = getattr(self, f"_cmd_{command}", None)
        if handler is None:
            raise CellError(
                f"unknown command {command!r}. Commands: providers, models, alias, unalias, "
                "cancel, last, reset, config, offline. `%llm` shows help.",
                "Unknown %llm command",
            )
        return handler(args)

    def _cmd_help(self, args: list[str]) -> None:
        print(HELP)

    def _cmd_providers(self, args: list[str]) -> Any:
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

    def _cmd_models(self, args: list[str]) -> Any:
        from .listing import list_models

        return list_models(args[0] if args else None)

    def _cmd_alias(self, args: list[str]) -> None:
        if len(args) != 2:
            raise CellError("usage: %llm alias NAME provider:model", "Malformed %llm line")
        try:
            registry.set_alias(args[0], args[1])
        except (ValueError, ConfigurationError) as exc:
            raise CellError(str(exc), "Bad alias") from None
        print(f"{args[0]} -> {args[1]}")

    def _cmd_unalias(self, args: list[str]) -> None:
        if len(args) != 1 or args[0] not in registry.aliases:
            raise CellError(f"no such alias: {' '.join(args)!r}", "Bad alias")
        registry.remove_alias(args[0])

    def _cmd_cancel(self, args: list[str]) -> None:
        running = [h for h in self.handles if not h.done()]
        if not running:
            print("nothing is running")
            return
        targets = running if args[:1] == ["all"] else running[-1:]
        for h in targets:
            h.cancel()
        print(f"cancelled {len(targets)} request(s)")

    def _cmd_last(self, args: list[str]) -> Any:
        if self.last is None:
            print("no answer yet")
            return None
        return self.last

    def _cmd_reset(self, args: list[str]) -> None:
        self.history.clear()
        print("chat history cleared")

    def _cmd_config(self, args: list[str]) -> Any:
        names = sorted(self.trait_names(config=True))
        rows = [(n, repr(getattr(self, n))) for n in names]
        rows.append(("offline", repr(is_offline())))
        return Table(("setting", "value"), rows)

    def _cmd_offline(self, args: list[str]) -> None:
        if args[:1] == ["auto"]:
            from .defaults import provider_with_key

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
            return
        if args[:1] == ["on"]:
            set_offline(True)
            print("offline mode on: every provider uses the bundled emulator")
        elif args[:1] == ["off"]:
            set_offline(False)
            print("offline mode off")
        elif not args:
            print(f"offline mode is {'on' if is_offline() else 'off'}")
        else:
            raise CellError("usage: %llm offline on|off|auto", "Malformed %llm line")


class Table:
    """A small table shown as HTML in notebooks and as aligned text elsewhere."""

    def __init__(self, header: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
        self.header = header
        self.rows = rows

    def __repr__(self) -> str:
        cells = [self.header, *[tuple(str(c) for c in r) for r in self.rows]]
        widths = [max(len(r[i]) for r in cells) for i in range(len(self.header))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(line.rstrip() for line in lines)

    def _repr_html_(self) -> str:
        import html

        head = "".join(f"<th>{html.escape(h)}</th>" for h in self.header)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>"
            for r in self.rows
        )
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _run_direct(factory: Callable[[], Any], line: str) -> Any:
    """Run a cell coroutine without the transformer: on the running loop as a task (the
    handle is returned), or to completion when no loop runs (plain scripts)."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(factory())
    task = loop.create_task(factory())
    return LLMHandle(task, f"%%llm {line}".strip())


def register(magics: LLMMagics) -> None:
    global _active
    _active = magics


def unregister() -> None:
    global _active
    _active = None
