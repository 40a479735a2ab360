"""The %%llm / %llm / %%chain / %chain magics: their configuration (traitlets) and the
NotebookSession they own, handed to the cell runners.

The input transformer rewrites a `%%llm` or `%%chain` cell into
`await <these magics>.run_cell_async(name, line, body)`, reaching this object through
IPython's own magics registry. A new cell magic is one entry in CELL_RUNNERS (plus a
@cell_magic method for direct calls); a new %llm command is one entry in commands.COMMANDS."""

from __future__ import annotations

import asyncio
import dataclasses
import shlex
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from IPython.core.magic import Magics, line_cell_magic, magics_class
from traitlets import Bool, Dict, Float, Int, Unicode, observe

from ..core import registry
from ..core.http import DEFAULT_TIMEOUT
from ..core.offline import is_offline
from ..core.pricing import set_price
from ..core.types import (
    DEFAULT_CHUNK_TIMEOUT,
    DEFAULT_FIRST_TOKEN_TIMEOUT,
    DEFAULT_REASONING_FIRST_TOKEN_TIMEOUT,
)
from .chain_cell import run_chain_cell, run_chain_line
from .chain_commands import chain_command
from .commands import COMMANDS, HELP
from .display import Table
from .errors import CellError
from .handle import LLMHandle
from .listing import models_line, run_doctor_line
from .llm_cell import run_llm_cell
from .log_commands import cell_origin
from .session import NotebookSession, Settings
from .status import BusyWhileRunning
from .transformer import CellTransformer
from .views import widgets_available

__all__ = ["CELL_RUNNERS", "LINE_RUNNERS", "LLMMagics"]

CellRunner = Callable[[NotebookSession, str, str], Awaitable[Any]]
LineRunner = Callable[[NotebookSession, str], Awaitable[Any]]

#: Cell magics the input transformer turns into an awaited runner: name -> runner.
CELL_RUNNERS: dict[str, CellRunner] = {"llm": run_llm_cell, "chain": run_chain_cell}
#: Line magics whose line starts with a word that streams: (magic, word) -> runner.
LINE_RUNNERS: dict[tuple[str, str], LineRunner] = {
    ("chain", "run"): run_chain_line,
    ("llm", "models"): models_line,  # network calls: awaited on the kernel's loop
    ("llm", "doctor"): run_doctor_line,
}


@magics_class
class LLMMagics(Magics):
    """Configure with %config LLMMagics.default_model = "anthropic:claude-haiku-5-5"."""

    default_model = Unicode("", help="Model used when a cell names none.").tag(config=True)
    aliases = Dict(help="Extra model aliases: name -> provider:model.").tag(config=True)
    max_history = Int(10, help="Exchanges sent back with --chat.").tag(config=True)
    max_concurrent = Int(10, help="Concurrent requests per provider.").tag(config=True)
    # The library's limits (core/types.py says why these values); 0 means no limit.
    request_timeout = Float(DEFAULT_TIMEOUT, help="HTTP timeout in seconds.").tag(config=True)
    stream_timeout = Float(0.0, help="Seconds a whole stream may take (0: none).").tag(config=True)
    chunk_timeout = Float(
        DEFAULT_CHUNK_TIMEOUT, help="Seconds of silence allowed once text flows (0: none)."
    ).tag(config=True)
    first_token_timeout = Float(
        DEFAULT_FIRST_TOKEN_TIMEOUT, help="Seconds to wait for the first text (0: none)."
    ).tag(config=True)
    reasoning_first_token_timeout = Float(
        DEFAULT_REASONING_FIRST_TOKEN_TIMEOUT,
        help="Seconds to wait for the first text when reasoning is requested (0: none).",
    ).tag(config=True)
    verify = Unicode(
        "", help="TLS trust: '' default, 'system' (OS store), a CA file or directory, or 'off'."
    ).tag(config=True)
    update_interval = Float(0.05, help="Seconds between widget frames.").tag(config=True)
    default_format = Unicode("markdown", help="markdown, text, code, json or html.").tag(
        config=True
    )
    show_hint = Bool(True, help="Say once when the offline demo model is used.").tag(config=True)
    cache = Bool(False, help="Answer repeated requests from the response cache.").tag(config=True)
    prices = Dict(
        help="Price overrides, USD per million tokens: {'provider:model': [input, output]}."
    ).tag(config=True)

    def __init__(self, shell: Any = None, **kwargs: Any) -> None:
        super().__init__(shell=shell, **kwargs)
        namespace = shell.user_ns if shell is not None else {}
        self.session = NotebookSession(
            self._settings(), namespace, widgets=widgets_available(shell)
        )
        #: installed by the extension: cells become awaited runners; busy status kept
        self.transformer = CellTransformer(type(self).__name__, CELL_RUNNERS, LINE_RUNNERS)
        self.busy = BusyWhileRunning(shell)
        registry.aliases.update(self.aliases)
        if self.prices:
            self._prices_changed({"new": self.prices})

    def _settings(self) -> Settings:
        return Settings(**{f.name: getattr(self, f.name) for f in dataclasses.fields(Settings)})

    @observe(*(f.name for f in dataclasses.fields(Settings)))
    def _settings_changed(self, change: dict[str, Any]) -> None:
        if hasattr(self, "session"):  # traits set while the base class initializes
            setattr(self.session.settings, change["name"], change["new"])

    @observe("prices")
    def _prices_changed(self, change: dict[str, Any]) -> None:
        for model, pair in change["new"].items():
            set_price(model, *pair)

    @observe("aliases")
    def _aliases_changed(self, change: dict[str, Any]) -> None:
        for name, target in change["new"].items():
            registry.set_alias(name, target)

    # ------------------------------------------------------------ awaited by cells
    async def run_cell_async(self, magic: str, line: str, body: str) -> Any:
        """What a transformed `%%<magic> line` cell awaits."""
        with cell_origin(self.shell):
            return await CELL_RUNNERS[magic](self.session, line, body)

    async def run_line_async(self, magic: str, line: str) -> Any:
        """What a transformed `%<magic> <word> ...` cell awaits."""
        word = line.split(None, 1)[0] if line.strip() else ""
        with cell_origin(self.shell):
            return await LINE_RUNNERS[(magic, word)](self.session, line)

    # ------------------------------------------------------------ the magics
    @line_cell_magic
    def llm(self, line: str, cell: str | None = None) -> Any:
        """%%llm runs a prompt; %llm runs a command (`%llm` alone shows help). The cell
        form is normally rewritten to an awaited call by the input transformer; called
        directly (e.g. run_cell_magic), it runs in the background on the running loop."""
        if cell is not None:
            with cell_origin(self.shell):
                return _run_direct(run_llm_cell(self.session, line, cell), f"%%llm {line}")
        argv = _split(line, "Malformed %llm line")
        if not argv:
            print(HELP)
            return None
        name, args = argv[0], argv[1:]
        if name == "config":
            return self.config_table()
        command = COMMANDS.get(name)
        if command is None:
            raise CellError(
                f"unknown command {name!r}. Commands: {', '.join([*COMMANDS, 'config'])}. "
                "`%llm` shows help.",
                "Unknown %llm command",
            )
        return command(self.session, args)

    @line_cell_magic
    def chain(self, line: str, cell: str | None = None) -> Any:
        """%%chain defines and runs a prompt chain; %chain list | show NAME |
        export NAME PATH | run NAME [key=value ...] | serve NAME."""
        if cell is not None:
            with cell_origin(self.shell):
                return _run_direct(run_chain_cell(self.session, line, cell), f"%%chain {line}")
        argv = _split(line, "Malformed %chain")
        if argv[:1] == ["run"]:
            with cell_origin(self.shell):
                return _run_direct(run_chain_line(self.session, line), f"%chain {line}")
        return chain_command(self.session, argv)

    def config_table(self) -> Table:
        """`%llm config`: every setting and its value."""
        names = sorted(self.trait_names(config=True))
        rows = [(n, repr(getattr(self, n))) for n in names]
        rows.append(("offline", repr(is_offline())))
        return Table(("setting", "value"), rows)


def _split(line: str, kind: str) -> list[str]:
    try:
        return shlex.split(line)
    except ValueError as exc:
        raise CellError(str(exc), kind) from None


def _run_direct(work: Coroutine[Any, Any, Any], label: str) -> Any:
    """Run a cell coroutine without the transformer: on the running loop as a task (the
    handle is returned), or to completion when no loop runs (plain scripts)."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(work)
    return LLMHandle(loop.create_task(work), label.strip())
