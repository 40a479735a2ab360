"""The live view of a `%%llm --over` map: one progress bar per model with done / failed /
in flight, tokens/s, cost so far and ETA, the last few answers, and a Cancel button; plain
text (a line per model when it ends) without widgets."""

from __future__ import annotations

import html
import time
from collections.abc import Callable
from typing import Any

import ipywidgets as w  # type: ignore[import-untyped]  # no stubs or py.typed

from ..core.mapping import MapProgress

__all__ = ["MapView", "status_line"]

RECENT_SHOWN = 3
ANSWER_PREVIEW = 120


def status_line(p: MapProgress) -> str:
    """`12/40 done, 1 failed, 5 in flight, 310 tok/s, $0.0012, ETA 8s`."""
    total = "?" if p.total is None else str(p.total)
    cost = p.cost
    eta = p.eta
    parts = [
        f"{p.done}/{total} done",
        f"{p.failed} failed",
        f"{len(p.in_flight)} in flight",
        f"{p.tokens_per_s:.0f} tok/s",
        "cost unknown" if cost is None else f"${cost:.4f}",
    ]
    if p.cached:
        parts.append(f"{p.cached} cached")
    if eta is not None and p.done + p.failed < (p.total or 0):
        parts.append(f"ETA {eta:.0f}s")
    return ", ".join(parts)


class MapView:
    """Progress of one map per model; `on_update` is each MapProgress's callback."""

    def __init__(
        self,
        labels: list[str],
        widgets: bool,
        interval: float,
        show: Callable[[Any], None],
    ) -> None:
        self.widgets = widgets
        self.interval = interval
        self.on_cancel: Callable[[], Any] | None = None
        self._last = 0.0
        self._progress: dict[str, MapProgress] = {}
        self._bars: dict[str, w.IntProgress] = {}
        self._lines: dict[str, w.HTML] = {}
        self.recent = w.HTML()
        self.cancel = w.Button(description="Cancel", button_style="warning")
        self.cancel.on_click(lambda _b: self.on_cancel() if self.on_cancel else None)
        if not widgets:
            return
        rows = []
        for name in labels:
            bar = w.IntProgress(value=0, min=0, max=1, description=name[:20])
            line = w.HTML()
            self._bars[name], self._lines[name] = bar, line
            rows.append(w.HBox([bar, line]))
        self.box = w.VBox([*rows, w.HBox([self.cancel]), self.recent])
        show(self.box)

    def track(self, name: str, progress: MapProgress) -> MapProgress:
        self._progress[name] = progress
        progress.on_update = lambda _p: self.refresh()
        return progress

    def refresh(self, force: bool = False) -> None:
        """Redraw at most every `interval` seconds (always when forced)."""
        now = time.monotonic()
        if not self.widgets or (not force and now - self._last < self.interval):
            return
        self._last = now
        recent: list[str] = []
        for name, p in self._progress.items():
            bar = self._bars[name]
            bar.max = max(1, p.total or 0)
            bar.value = p.done + p.failed
            bar.bar_style = "danger" if p.failed else ("success" if p.result.elapsed else "")
            self._lines[name].value = html.escape(status_line(p))
            for index, text in list(p.recent)[-RECENT_SHOWN:]:
                short = text if len(text) <= ANSWER_PREVIEW else text[: ANSWER_PREVIEW - 1] + "…"
                recent.append(f"<b>{html.escape(name)} #{index}</b>: {html.escape(short)}")
        self.recent.value = "<br>".join(recent)

    def finish(self, state: str) -> None:
        """The map ended (`done`, `cancelled` or `failed`): a last frame or a text line."""
        if self.widgets:
            self.refresh(force=True)
            self.cancel.disabled = True
            self.cancel.description = state
            return
        for name, p in self._progress.items():
            print(f"{name}: {status_line(p)} ({state})")
