"""%%llm with several models: one prompt to all of them at once, streamed side by side in a
grid (each pane with its own stats and Cancel, plus Cancel all), then a summary table.
--repeat N runs each model N times and reports medians. One model failing does not stop
the others."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any

from ..core.base import BaseProvider
from ..core.compare import ComparisonResult, summarize
from ..core.types import LLMResponse
from .cell_features import cell_message, feature_params
from .display import markdown_bundle
from .errors import CellError, describe
from .interrupt import interrupted
from .launch import launch
from .options import CellOptions
from .run import StreamRun, label, note
from .session import NotebookSession
from .stats import Stats
from .views import View, make_view
from .widget import ComparisonGrid, WidgetView, comparison_grid

__all__ = ["run_compare"]


@dataclass
class _Pane:
    model_spec: str
    provider: BaseProvider | None  # None: the model could not be set up (error shown)
    view: View


async def run_compare(session: NotebookSession, opts: CellOptions, prompt: str) -> Any:
    """Stream `prompt` from every model of the cell (each --repeat times) side by side."""
    # the same model named twice would share one row; --repeat N is the way to run it again
    specs = list(dict.fromkeys(opts.models)) or [(await session.model_spec([]))[0]]
    widgets = session.widgets and not opts.no_widget
    result = ComparisonResult(prompt)
    panes: list[_Pane] = []
    for model_spec in specs:
        provider: BaseProvider | None
        try:
            provider = session.provider_for(model_spec)
            title, sub = label(provider), note(provider)
        except CellError as exc:
            provider, title, sub = None, model_spec, None
            result.errors[model_spec] = str(exc)
        view = make_view(widgets, title, sub, session.settings.update_interval)
        panes.append(_Pane(model_spec, provider, view))
    grid: ComparisonGrid | None = None
    grid_id: str | None = None
    if widgets:
        grid = comparison_grid([p.view for p in panes if isinstance(p.view, WidgetView)])
        grid_id = session.show_live(grid)

    messages = [cell_message(session, opts, prompt)]
    params = {**session.call_params(opts), **feature_params(session, opts)}
    cfg = session.stream_config(opts.timeout)

    async def one(pane: _Pane) -> None:
        runs: list[LLMResponse] = result.runs.setdefault(pane.model_spec, [])
        view, provider = pane.view, pane.provider
        if provider is None:
            view.finish("failed", Stats(), result.errors[pane.model_spec])
            return
        for i in range(opts.repeat):
            if opts.repeat > 1:
                view.note = f"run {i + 1}/{opts.repeat}"
            run = StreamRun(provider, messages, view, opts.system, params, cfg)
            task = asyncio.ensure_future(run.go())
            view.on_cancel = task.cancel
            try:
                await task
            except asyncio.CancelledError:
                if run.response is not None:
                    runs.append(run.response)
                if interrupted():
                    raise
                return  # this pane's Cancel: the other models go on
            except Exception as exc:  # not an LLMError (those end in run.error): a bug
                if run.response is not None:
                    runs.append(run.response)
                result.errors[pane.model_spec] = describe(exc)
                view.finish("failed", run.stats(), result.errors[pane.model_spec])
                return
            if run.response is not None:
                runs.append(run.response)
            if run.error is not None:
                result.errors[pane.model_spec] = describe(run.error)
                return

    everything = asyncio.ensure_future(asyncio.gather(*(one(p) for p in panes)))
    if grid is not None:
        grid.cancel_all.on_click(lambda _b: everything.cancel())

    async def finish() -> ComparisonResult:
        stopped = False
        try:
            await everything
        except asyncio.CancelledError:
            # Cancel all, `%llm cancel` or cancelling a --background handle end the streams
            # and the table still comes; an interrupt also gets the table (what arrived),
            # then ends the cell with the short "interrupted" message.
            stopped = interrupted() and not opts.background
            everything.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(everything)
        for model_spec in specs:
            runs = result.runs.get(model_spec, [])
            result.responses[model_spec] = runs[-1] if runs else None
            result.rows.append(summarize(model_spec, runs, result.errors.get(model_spec)))
        if grid is not None:
            grid.cancel_all.disabled = True
            session.retire(grid_id, grid)
        _publish(session, result, opts.output)
        if stopped:
            raise asyncio.CancelledError
        return result

    launched = await launch(
        session,
        finish(),
        f"comparison of {len(specs)} models",
        background=opts.background,
        output=opts.output,
    )
    return launched  # the handle of a --background cell, else None


def _publish(session: NotebookSession, result: ComparisonResult, output: str | None) -> None:
    session.keep(result, output)
    sections = []
    for model_spec, response in result.responses.items():
        body = response.content if response is not None else ""
        if model_spec in result.errors:
            body = (body + "\n\n" if body else "") + f"*{result.errors[model_spec]}*"
        sections.append(f"#### {model_spec}\n\n{body}")
    session.publish(markdown_bundle("\n\n".join(sections)))
    session.display(result)
