"""`%%llm --over ROWS [MODEL ...] [-o VAR] [--cache]`: the cell is a template filled from each
row of ROWS (a DataFrame, a list of mappings or of strings: `{row}`), run with amap (one
model) or amap_models (several: a comparison over the dataset), under a live progress
view with Cancel. `VAR` (and `%llm last`) then holds the MapResult or MapComparison, also
the finished part of a cancelled map, and the cell shows a compact table (and, for a
comparison, its chart when matplotlib is installed)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from ..core.base import BaseProvider
from ..core.errors import ConfigurationError
from ..core.map_compare import MapComparison, amap_models
from ..core.mapping import MapProgress, MapResult, amap
from ..core.template import TemplateError
from .errors import CellError
from .launch import launch
from .map_view import MapView
from .options import CellOptions
from .session import NotebookSession

__all__ = ["run_over"]

TABLE_ROWS = 10


def _rows(session: NotebookSession, expr: str) -> Any:
    """The value `--over` names, read from the notebook."""
    try:
        return eval(  # nosec B307  # the user's own notebook expression
            compile(expr, "<--over>", "eval"), dict(session.namespace)
        )
    except NameError as exc:
        raise CellError(
            f"--over {expr}: {exc}. Define the rows first (a DataFrame, a list of dicts or "
            "a list of strings).",
            "Undefined --over rows",
        ) from None
    except Exception as exc:
        raise CellError(f"--over {expr}: {type(exc).__name__}: {exc}", "Bad --over rows") from None


async def run_over(session: NotebookSession, opts: CellOptions, template: str) -> Any:
    """Run the cell's template over the rows `opts.over` names; see the module docstring."""
    assert opts.over is not None
    if not template.strip():
        raise CellError("the cell has no template. Write it below %%llm --over.", "Empty cell")
    rows = _rows(session, opts.over)
    specs = list(dict.fromkeys(opts.models)) or [(await session.model_spec([]))[0]]
    providers: list[BaseProvider] = [session.provider_for(m) for m in specs]
    view = MapView(
        specs,
        session.widgets and not opts.no_widget,
        max(session.settings.update_interval, 0.1),
        session.display,
    )
    tracks = {m: view.track(m, MapProgress()) for m in specs}
    options: dict[str, Any] = {
        "cache": False,
        "system": opts.system,
        "stream_config": session.stream_config(opts.timeout),
        **session.call_params(opts),
    }

    async def work() -> MapResult | MapComparison:
        if len(providers) == 1:
            return await amap(
                template, rows, model=providers[0], progress=tracks[specs[0]], **options
            )
        return await amap_models(
            template,
            rows,
            models=providers,
            labels=specs,
            progress=tracks,
            **options,
        )

    def settle(task: asyncio.Task[MapResult | MapComparison]) -> None:
        state = "cancelled" if task.cancelled() else ("failed" if task.exception() else "done")
        view.finish(state)
        if task.cancelled() or task.exception() is None:
            result = task.result() if not task.cancelled() else _partial(specs, tracks, template)
            session.keep(result, opts.output)
            if not opts.background:
                _show(session, result)

    def on_cancel(cancel: Any) -> None:
        view.on_cancel = cancel

    try:
        launched = await launch(
            session,
            work(),
            f"--over {opts.over}",
            background=opts.background,
            output=opts.output,
            on_cancel=on_cancel,
            on_done=settle,
        )
    except (ConfigurationError, TemplateError) as exc:
        raise CellError(str(exc), type(exc).__name__) from None
    return launched


def _partial(
    specs: list[str], tracks: dict[str, MapProgress], template: str
) -> MapResult | MapComparison:
    if len(specs) == 1:
        return tracks[specs[0]].result
    comparison = MapComparison(template)
    for spec in specs:
        comparison.results[spec] = tracks[spec].result
    return comparison


def _show(session: NotebookSession, result: MapResult | MapComparison) -> None:
    """A compact table: the first rows with their answers; a comparison's summary + chart."""
    if isinstance(result, MapComparison):
        session.display(result)
        with contextlib.suppress(ImportError):
            session.display(result.plot())
        return
    try:
        table = result.to_pandas()
    except ImportError:
        session.display(result)
        return
    keep = [c for c in table.columns if c not in ("latency_s", "ttft_s")]
    session.display(table[keep].head(TABLE_ROWS))
    print(repr(result))
