"""The %%chain cell runner and `%chain run`: check a chain, show one pane per step, run it
on the kernel's loop (every step streaming into its pane), then publish the outputs.

%%chain [NAME] [-o VAR] [-m DEFAULT_MODEL] [--define] [--background] [--no-widget]
<chain text>                           (see n3_notebook.chain.parser for the syntax)
%chain run NAME [key=value ...] [-o VAR] [--background] [--no-widget]"""

from __future__ import annotations

import contextlib
import time
from typing import Any

from ..chain import Chain, ChainError, ChainEvent, ChainResult, parse_chain
from ..chain.engine import stream_chain
from ..core.errors import ConfigurationError
from .display import markdown_bundle
from .errors import CellError
from .launch import launch
from .options import parse_chain_line, parse_chain_run
from .session import NotebookSession
from .stats import Stats
from .views import View, make_view
from .widget import ChainPanel, WidgetView, chain_panel

__all__ = ["kept_chain", "run_chain_cell", "run_chain_line", "run_kept"]


async def run_chain_cell(session: NotebookSession, line: str, cell: str) -> Any:
    """A %%chain cell: parse (errors name the line), keep it if named, run it."""
    opts = parse_chain_line(line)
    try:
        chain = parse_chain(cell, opts.name, first_line=2)
    except ChainError as exc:
        raise CellError(str(exc), "Chain error") from None
    if opts.model:
        chain.default_model = opts.model
    if opts.name:
        session.chains[opts.name] = chain
    if opts.define:
        print(f"chain {opts.name or '(unnamed)'}: {', '.join(chain.step_names)}")
        return None
    return await run_kept(session, chain, {}, opts.output, opts.background, opts.no_widget)


async def run_chain_line(session: NotebookSession, line: str) -> Any:
    """`%chain run NAME key=value ... [-o VAR] [--background] [--no-widget]`."""
    opts = parse_chain_run(line)
    chain = kept_chain(session, opts.name)
    return await run_kept(session, chain, opts.inputs, opts.output, opts.background, opts.no_widget)


def kept_chain(session: NotebookSession, name: str) -> Chain:
    if name not in session.chains:
        known = ", ".join(sorted(session.chains)) or "none yet"
        raise CellError(f"no chain named {name!r} (kept chains: {known})", "Unknown chain")
    return session.chains[name]


async def run_kept(
    session: NotebookSession,
    chain: Chain,
    inputs: dict[str, Any],
    output: str | None,
    background: bool,
    no_widget: bool,
) -> Any:
    """Run a chain in the notebook: everything that can be wrong is reported before a pane
    is shown or a request sent."""
    fallback = chain.default_model or (await session.model_spec([]))[0]
    result = ChainResult(chain.name, {}, {})
    try:
        values = chain.resolve_inputs(inputs)
        chain.check_references({**session.namespace, **values})
        for step in chain.steps:
            try:
                session.provider(step.model or fallback)
            except ConfigurationError as exc:
                raise ChainError(f"step {step.name!r}: {exc}", step.line) from None
    except (ChainError, ConfigurationError) as exc:
        raise CellError(str(exc), "Chain error") from None
    panel = StepPanes(session, chain, not no_widget, fallback)

    async def drive() -> ChainResult:
        gen = stream_chain(
            chain,
            inputs,
            namespace=session.namespace,
            provider_factory=session.provider,
            default_model=fallback,
            stream_config=session.stream_config(),
            result=result,
        )
        try:
            async for event in gen:
                panel.on_event(event, result)
        finally:
            await gen.aclose()
            panel.close(result)
        return result

    def settle(_task: Any) -> None:
        panel.close(result)  # also when the task was cancelled before it began
        session.keep(result, output)
        if result.steps:
            session.publish(markdown_bundle(_summary(result)))

    def on_cancel(cancel: Any) -> None:
        panel.on_cancel = cancel

    try:
        launched = await launch(
            session,
            drive(),
            f"chain {chain.name or ''}".strip(),
            background=background,
            output=output,
            on_cancel=on_cancel,
            on_done=settle,
        )
    except (ChainError, ConfigurationError) as exc:
        raise CellError(str(exc), "Chain error") from None
    return launched  # the handle of a --background cell, else None


class StepPanes:
    """One pane per step, in definition order, plus a Cancel button for the whole chain."""

    FINAL = ("done", "failed", "cancelled", "skipped")

    def __init__(
        self, session: NotebookSession, chain: Chain, widgets: bool, fallback: str | None
    ) -> None:
        self.on_cancel: Any = None
        self.views: dict[str, View] = {}
        self.tokens: dict[str, int] = {}
        self.first: dict[str, float] = {}
        self.ended: set[str] = set()
        use_widgets = widgets and session.widgets
        for step in chain.steps:
            title = f"{step.name} · {step.model or fallback or 'default model'}"
            view = make_view(use_widgets, title, None, session.settings.update_interval)
            view.on_cancel = self._cancel
            self.views[step.name] = view
        self.box: ChainPanel | None = None
        self.session = session
        self.display_id: str | None = None
        if use_widgets:
            panes = [v for v in self.views.values() if isinstance(v, WidgetView)]
            self.box = chain_panel(panes, self._cancel)
            self.display_id = session.show_live(self.box)

    def _cancel(self) -> None:
        if self.on_cancel is not None:
            self.on_cancel()

    def _stats(self, name: str, result: ChainResult, finish: str | None = None) -> Stats:
        sr = result.steps.get(name)
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

    def on_event(self, event: ChainEvent, result: ChainResult) -> None:
        name = event.step
        view = self.views.get(name) if name else None
        if view is None or name is None:
            return
        kind = event.type
        if kind == "step_started":
            view.start()
        elif kind == "token":
            self.tokens[name] = self.tokens.get(name, 0) + 1
            self.first.setdefault(name, time.perf_counter())
            view.update_stats(self._stats(name, result))
            view.append(event.data["text"])
        elif kind == "step_done":
            self._end(name, "done", self._stats(name, result, event.data.get("finish_reason")))
        elif kind == "step_failed":
            self._end(name, "failed", self._stats(name, result, "error"), event.data["error"])
        elif kind == "step_skipped":
            self._end(name, "skipped", Stats(), event.data["reason"])
        elif kind == "step_cancelled":
            self._end(name, "cancelled", self._stats(name, result, "cancelled"))

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
            self.session.retire(self.display_id, self.box)

    def _end(self, name: str, state: str, stats: Stats, error: str | None = None) -> None:
        self.ended.add(name)
        self.views[name].finish(state, stats, error)


def _summary(result: ChainResult) -> str:
    parts = []
    for name, sr in result.steps.items():
        if sr.state == "done":
            parts.append(f"#### {name}\n\n{sr.output}")
        else:
            parts.append(f"#### {name}\n\n*{sr.state}{': ' + sr.error if sr.error else ''}*")
    return "\n\n".join(parts)
