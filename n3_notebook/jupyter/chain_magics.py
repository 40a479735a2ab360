"""%%chain and %chain: define, run and inspect prompt chains in a notebook.

%%chain [NAME] [-o VAR] [-m DEFAULT_MODEL] [--define] [--background] [--no-widget]
<chain text>                           (see n3_notebook.chain.parser for the syntax)

%chain run NAME [key=value ...] [-o VAR]   run a kept chain again with other inputs
%chain list | show NAME | export NAME PATH
%chain serve NAME [--port P] [--stop]     serve it over HTTP from the kernel's background
"""

from __future__ import annotations

import argparse
import contextlib
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..chain import Chain, ChainError, ChainResult, parse_chain
from ..core.errors import ConfigurationError
from .errors import CellError
from .handle import LLMHandle
from .options import parse_value
from .stats import Stats
from .views import BufferedTextView, widgets_available

if TYPE_CHECKING:
    from .magics import LLMMagics

USAGE = "%%chain [NAME] [-o VAR] [-m MODEL] [--define] [--background] [--no-widget]"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # type: ignore[override]
        raise CellError(f"{message}. Usage: {USAGE}", "Malformed %%chain line")


def _parse(line: str) -> argparse.Namespace:
    p = _Parser(prog="%%chain", add_help=False, allow_abbrev=False)
    p.add_argument("name", nargs="?")
    p.add_argument("-o", "--output")
    p.add_argument("-m", "--model")
    p.add_argument("--define", action="store_true")
    p.add_argument("--background", action="store_true")
    p.add_argument("--no-widget", dest="no_widget", action="store_true")
    try:
        return p.parse_args(shlex.split(line))
    except ValueError as exc:
        raise CellError(f"{exc}. Usage: {USAGE}", "Malformed %%chain line") from None


async def run_chain_cell(line: str, cell: str) -> Any:
    """A %%chain cell: parse (errors name the line), keep it if named, run it."""
    from .runner import _magics

    magics = _magics()
    ns = _parse(line)
    try:
        chain = parse_chain(cell, ns.name, first_line=2)
    except ChainError as exc:
        raise CellError(str(exc), "Chain error") from None
    if ns.model:
        chain.default_model = ns.model
    if ns.name:
        magics.chains[ns.name] = chain
    if ns.define:
        print(f"chain {ns.name or '(unnamed)'}: {', '.join(chain.step_names)}")
        return None
    return await run_kept(magics, chain, {}, ns.output, ns.background, ns.no_widget)


async def run_chain_line(line: str) -> Any:
    """`%chain run NAME key=value ... [-o VAR] [--background] [--no-widget]`."""
    from .runner import _magics

    magics = _magics()
    try:
        argv = shlex.split(line)
    except ValueError as exc:
        raise CellError(f"{exc} in {line!r}", "Malformed %chain") from None
    if not argv or argv[0] != "run" or len(argv) < 2:
        raise CellError("usage: %chain run NAME [key=value ...] [-o VAR]", "Malformed %chain")
    name, rest = argv[1], argv[2:]
    chain = _kept(magics, name)
    inputs: dict[str, Any] = {}
    output, background, no_widget = None, False, False
    it = iter(rest)
    for arg in it:
        if arg == "-o":
            output = next(it, None)
        elif arg == "--background":
            background = True
        elif arg == "--no-widget":
            no_widget = True
        elif "=" in arg:
            key, _, value = arg.partition("=")
            inputs[key] = parse_value(value)
        else:
            raise CellError(f"expected key=value, got {arg!r}", "Malformed %chain")
    return await run_kept(magics, chain, inputs, output, background, no_widget)


def _kept(magics: LLMMagics, name: str) -> Chain:
    if name not in magics.chains:
        known = ", ".join(sorted(magics.chains)) or "none yet"
        raise CellError(f"no chain named {name!r} (kept chains: {known})", "Unknown chain")
    return magics.chains[name]


async def run_kept(
    magics: LLMMagics,
    chain: Chain,
    inputs: dict[str, Any],
    output: str | None,
    background: bool,
    no_widget: bool,
) -> Any:
    from .defaults import default_model
    from .launch import launch
    from .runner import stream_config

    if output is not None and not output.isidentifier():
        raise CellError(f"-o needs a Python variable name, got {output!r}", "Malformed %chain")
    fallback = chain.default_model or (await default_model(magics.default_model or None))[0]
    result = ChainResult(chain.name, {}, {})
    try:  # everything that can be wrong is reported before a pane is shown or a request sent
        values = chain.resolve_inputs(inputs)
        chain.check_references({**magics.shell.user_ns, **values})
        for step in chain.steps:
            try:
                magics.provider(step.model or fallback)
            except ConfigurationError as exc:
                raise ChainError(f"step {step.name!r}: {exc}", step.line) from None
    except (ChainError, ConfigurationError) as exc:
        raise CellError(str(exc), "Chain error") from None
    use_widgets = not no_widget and widgets_available(magics.shell)
    panel = _Panel(chain, use_widgets, magics.update_interval, fallback)

    async def drive() -> ChainResult:
        from ..chain.engine import stream_chain

        gen = stream_chain(
            chain,
            inputs,
            namespace=magics.shell.user_ns,
            provider_factory=magics.provider,
            default_model=fallback,
            stream_config=stream_config(magics, None),
            result=result,
        )
        try:
            async for event in gen:
                panel.on_event(event, result)
        finally:
            await gen.aclose()
            panel.close(result)
        return result

    def settle(_t: Any) -> None:
        panel.close(result)  # also when the task was cancelled before it began
        magics.last = result
        if output:
            magics.shell.user_ns[output] = result
        if result.steps:
            _publish(result)

    def on_cancel(cancel: Any) -> None:
        panel.on_cancel = cancel

    try:
        launched = await launch(
            magics,
            drive(),
            f"chain {chain.name or ''}".strip(),
            background=background,
            output=output,
            on_cancel=on_cancel,
            on_done=settle,
        )
    except (ChainError, ConfigurationError) as exc:
        raise CellError(str(exc), "Chain error") from None
    return launched if isinstance(launched, LLMHandle) else None


class _Panel:
    """One pane per step, in definition order, plus a Cancel button for the whole chain."""

    FINAL = ("done", "failed", "cancelled", "skipped")

    def __init__(
        self, chain: Chain, use_widgets: bool, interval: float, fallback: str | None = None
    ) -> None:
        self.on_cancel: Any = None
        self.views: dict[str, Any] = {}
        self.tokens: dict[str, int] = {}
        self.first: dict[str, float] = {}
        self.box = None
        self.ended: set[str] = set()
        for step in chain.steps:
            title = f"{step.name} · {step.model or fallback or 'default model'}"
            if use_widgets:
                from .widget import WidgetView

                view = WidgetView(title, None, interval=interval, display=False)
                view.on_cancel = self._cancel
            else:
                view = BufferedTextView(title, None)
            self.views[step.name] = view
        if use_widgets:
            from IPython.display import display

            from .widget import chain_panel

            self.box = chain_panel(list(self.views.values()), self._cancel)
            display(self.box)

    def _cancel(self) -> None:
        if self.on_cancel is not None:
            self.on_cancel()

    def _stats(self, name: str, result: ChainResult, finish: str | None = None) -> Stats:
        sr = result.steps.get(name)
        import time

        elapsed = 0.0
        if sr is not None and sr.started is not None:
            elapsed = (sr.finished or time.perf_counter()) - sr.started
        ttft = None
        if sr is not None and sr.started is not None and name in self.first:
            ttft = self.first[name] - sr.started
        tokens = self.tokens.get(name, 0)
        if sr is not None and sr.response is not None and sr.response.usage.output_tokens:
            tokens = sr.response.usage.output_tokens
        return Stats(ttft=ttft, tokens=tokens, elapsed=elapsed, finish=finish)

    def on_event(self, event: Any, result: ChainResult) -> None:
        import time

        view = self.views.get(event.step) if event.step else None
        if view is None:
            return
        kind = event.type
        if kind == "step_started":
            view.start()
        elif kind == "token":
            self.tokens[event.step] = self.tokens.get(event.step, 0) + 1
            self.first.setdefault(event.step, time.perf_counter())
            view.update_stats(self._stats(event.step, result))
            view.append(event.data["text"])
        elif kind == "step_done":
            stats = self._stats(event.step, result, event.data.get("finish_reason"))
            self._end(event.step, "done", stats)
        elif kind == "step_failed":
            stats = self._stats(event.step, result, "error")
            self._end(event.step, "failed", stats, event.data["error"])
        elif kind == "step_skipped":
            self._end(event.step, "skipped", Stats(), event.data["reason"])
        elif kind == "step_cancelled":
            self._end(event.step, "cancelled", self._stats(event.step, result, "cancelled"))

    def close(self, result: ChainResult) -> None:
        """Every pane that has not shown an end yet shows its step's final state: the
        steps that were running when the chain was cancelled, and those never started."""
        for name in self.views:
            if name in self.ended:
                continue
            sr = result.steps.get(name)
            state = sr.state if sr is not None and sr.state in self.FINAL else "cancelled"
            error = sr.error if sr is not None else None
            if state == "cancelled" and (sr is None or sr.started is None):
                error = error or "not started: the chain was cancelled"
            self._end(name, state, self._stats(name, result, state), error)
        if self.box is not None:
            with contextlib.suppress(Exception):
                self.box.cancel_all.disabled = True

    def _end(self, name: str, state: str, stats: Stats, error: str | None = None) -> None:
        self.ended.add(name)
        self.views[name].finish(state, stats, error)


def _publish(result: ChainResult) -> None:
    from IPython.display import display

    parts = []
    for name, sr in result.steps.items():
        if sr.state == "done":
            parts.append(f"#### {name}\n\n{sr.output}")
        else:
            parts.append(f"#### {name}\n\n*{sr.state}{': ' + sr.error if sr.error else ''}*")
    text = "\n\n".join(parts)
    display({"text/markdown": text, "text/plain": text}, raw=True)


def chain_line(magics: LLMMagics, line: str) -> Any:
    """%chain list | show NAME | export NAME PATH | run ... (run outside the transformer)."""
    try:
        argv = shlex.split(line)
    except ValueError as exc:
        raise CellError(f"{exc} in {line!r}", "Malformed %chain") from None
    if not argv:
        print(__doc__)
        return None
    cmd, args = argv[0], argv[1:]
    if cmd == "list":
        if not magics.chains:
            print("no chains yet: define one with a %%chain NAME cell")
        for name, ch in magics.chains.items():
            inputs = ", ".join(ch.inputs) or "no inputs"
            print(f"{name}: inputs {inputs}; steps {', '.join(ch.step_names)}")
        return None
    if cmd == "show" and len(args) == 1:
        print(_kept(magics, args[0]).to_text(), end="")
        return None
    if cmd == "export" and len(args) == 2:
        path = Path(args[1]).expanduser()
        text = _kept(magics, args[0]).to_text()
        try:
            path.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise CellError(
                f"cannot write {path}: {exc.strerror or exc}", "Export failed"
            ) from None
        print(f"wrote {path}")
        return None
    if cmd == "run":
        from .magics import _run_direct

        return _run_direct(lambda: run_chain_line(line), f"%chain {line}")
    if cmd == "serve":
        return _serve(magics, args)
    raise CellError(
        "usage: %chain list | show NAME | export NAME PATH | run NAME [key=value ...] "
        "| serve NAME [--port P]",
        "Malformed %chain",
    )


SERVE_USAGE = "usage: %chain serve NAME [--port P] [--stop]"


def _serve(magics: LLMMagics, args: list[str]) -> Any:
    """`%chain serve NAME [--port P] [--stop]`: serve a kept chain over HTTP from a
    background thread of the kernel (its own event loop); serving it again restarts it
    with the chain's current definition. Needs the `serve` extra."""
    name, port, stop = (args[0] if args else ""), 0, False
    rest = iter(args[1:])
    for arg in rest:
        if arg == "--stop":
            stop = True
        elif arg == "--port" and (value := next(rest, "")).isdigit():
            port = int(value)
        else:
            raise CellError(SERVE_USAGE, "Malformed %chain")
    if not name:
        raise CellError(SERVE_USAGE, "Malformed %chain")
    try:
        from ..serve.background import serve_chain, stop_chain
    except ImportError as exc:
        raise CellError(
            f"serving needs the serve extra ({exc.name} is missing): "
            "pip install 'n3_notebook[serve]'",
            "Missing package",
        ) from None
    if stop:
        print(f"stopped chain {name}" if stop_chain(name) else f"chain {name} was not served")
        return None
    chain = _kept(magics, name)
    user_ns = magics.shell.user_ns
    namespace = {
        ref: user_ns[ref]
        for step in chain.steps
        for ref in step.references()
        if ref in user_ns and ref not in chain.inputs
    }
    fallback = chain.default_model or magics.default_model or None
    if fallback is None and any(step.model is None for step in chain.steps):
        from .defaults import provider_with_key

        fallback = provider_with_key()  # as a %%chain cell would (offline: the demo model)
    try:
        server = serve_chain(name, chain, port, namespace=namespace, default_model=fallback)
    except (ValueError, OSError) as exc:
        raise CellError(str(exc), "Cannot serve") from None
    print(
        f"serving chain {name} at {server.url}/chains/{name}/run and /stream "
        f"(docs: {server.url}/docs; stop: %chain serve {name} --stop)"
    )
    return None
