"""%%llm with several models: one prompt to all of them at once, streamed side by side in a
grid (each pane with its own stats and Cancel, plus Cancel all), then a summary table.
--repeat N runs each model N times and reports medians. One model failing does not stop
the others."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

from ..core.compare import ComparisonResult, summarize
from ..core.types import LLMResponse, Message
from .errors import CellError, describe
from .options import CellOptions
from .run import StreamRun
from .stats import Stats
from .views import BufferedTextView, widgets_available

if TYPE_CHECKING:
    from .magics import LLMMagics


async def run_compare(magics: LLMMagics, opts: CellOptions, prompt: str) -> Any:
    from .handle import LLMHandle
    from .interrupt import interrupted
    from .launch import launch
    from .runner import (
        _model_spec,
        label,
        note,
        request_params,
        stream_config,
    )

    # the same model named twice would share one row; --repeat N is the way to run it again
    specs = list(dict.fromkeys(opts.models)) or [(await _model_spec(magics, opts))[0]]
    use_widgets = not opts.no_widget and widgets_available(magics.shell)
    result = ComparisonResult(prompt)
    panes: list[tuple[str, Any, Any]] = []  # (spec, provider or None, view)
    for spec in specs:
        try:
            provider = magics.provider_for(spec)
            title, sub = label(provider), note(provider)
        except CellError as exc:
            provider, title, sub = None, spec, None
            result.errors[spec] = str(exc)
        panes.append((spec, provider, _make_view(use_widgets, title, sub, magics)))
    grid = _show_grid([v for _, _, v in panes]) if use_widgets else None

    messages = [Message("user", prompt)]
    params, cfg = request_params(opts), stream_config(magics, opts.timeout)

    async def one(spec: str, provider: Any, view: Any) -> None:
        runs: list[LLMResponse] = result.runs.setdefault(spec, [])
        if provider is None:
            view.finish("failed", Stats(), result.errors[spec])
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
                result.errors[spec] = describe(exc)
                view.finish("failed", run.stats(), result.errors[spec])
                return
            if run.response is not None:
                runs.append(run.response)
            if run.error is not None:
                result.errors[spec] = f"{type(run.error).__name__}: {run.error}"
                return

    everything = asyncio.ensure_future(
        asyncio.gather(*(one(s, p, v) for s, p, v in panes), return_exceptions=False)
    )
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
        for spec in specs:
            runs = result.runs.get(spec, [])
            result.responses[spec] = runs[-1] if runs else None
            result.rows.append(summarize(spec, runs, result.errors.get(spec)))
        if grid is not None:
            grid.cancel_all.disabled = True
        _publish(result, opts, magics)
        if stopped:
            raise asyncio.CancelledError
        return result

    launched = await launch(
        magics,
        finish(),
        f"comparison of {len(specs)} models",
        background=opts.background,
        output=opts.output,
    )
    return launched if isinstance(launched, LLMHandle) else None


def _make_view(use_widgets: bool, title: str, sub: str | None, magics: LLMMagics) -> Any:
    if use_widgets:
        from .widget import WidgetView

        return WidgetView(title, sub, interval=magics.update_interval, display=False)
    return BufferedTextView(title, sub)


def _show_grid(views: list[Any]) -> Any:
    from IPython.display import display

    from .widget import comparison_grid

    grid = comparison_grid(views)
    display(grid)
    return grid


def _publish(result: ComparisonResult, opts: CellOptions, magics: LLMMagics) -> None:
    from IPython.display import display

    if opts.output:
        magics.shell.user_ns[opts.output] = result
    magics.last = result
    sections = []
    for spec, response in result.responses.items():
        body = response.content if response is not None else ""
        if spec in result.errors:
            body = (body + "\n\n" if body else "") + f"*{result.errors[spec]}*"
        sections.append(f"#### {spec}\n\n{body}")
    text = "\n\n".join(sections)
    display({"text/markdown": text, "text/plain": text}, raw=True)
    display(result)
