"""The live stream widget: header (model, state), text + stats, and a Cancel button; the
comparison grid and the chain panel that lay several of them out (their caller shows them).

A frame is one comm message (text and stats share one HTML widget, coalesced to at most
one every `interval` seconds); header and button change only when the state changes."""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

import ipywidgets as w  # type: ignore[import-untyped]  # no stubs or py.typed

from .coalesce import Coalescer
from .retire import static_pane
from .stats import Stats

STATE_COLORS = {
    "waiting": "#888",
    "streaming": "#1a73e8",
    "done": "#188038",
    "failed": "#d93025",
    "cancelled": "#e37400",
    "skipped": "#888",
}


SEGMENT = 4000  # characters of live text per frame before a segment is frozen


def _pre(text: str) -> str:
    # word-break:normal overrides JupyterLab's `word-break: break-all` for output <pre>s,
    # which otherwise splits words at the pane's edge ("a h|andful")
    return (
        '<pre style="white-space:pre-wrap;word-break:normal;overflow-wrap:anywhere;'
        f'margin:2px 0;font-family:inherit">{html.escape(text)}</pre>'
    )


class StreamBox(w.VBox):
    """A VBox whose text/plain form is short and stable (for saved notebooks, nbval)."""

    view: Any = None

    def __repr__(self) -> str:
        v = self.view
        return "n3_notebook stream" if v is None else f"n3_notebook stream: {v.label}"

    def static_html(self) -> str:
        return str(self.view.static_html())

    def static_text(self) -> str:
        return str(self.view.static_text())


class WidgetView:
    """Header (model, state), live text + stats, and a Cancel button."""

    def __init__(self, label: str, note: str | None = None, interval: float = 0.05) -> None:
        self.label = label
        self.note = note
        self.state = "waiting"
        self.on_cancel: Callable[[], Any] | None = None
        self.display_id: str | None = None  # set when shown alone (it can be replaced)
        self._stats = Stats()
        self.header = w.HTML()
        self.body = w.HTML()
        self.button = w.Button(
            description="Cancel",
            icon="stop",
            button_style="warning",
            # never squeezed to "C…" by a long model name in a narrow comparison pane
            layout=w.Layout(width="auto", flex="0 0 auto"),
        )
        self.button.on_click(self._clicked)
        self.frozen = w.VBox([])  # finished segments of a long answer, sent once each
        self._frozen_len = 0
        # the model's thinking: a collapsed "Thinking" section, shown once thinking arrives
        self.thinking_text = w.HTML()
        self.thinking = w.Accordion(
            children=[self.thinking_text], selected_index=None, layout=w.Layout(display="none")
        )
        self.thinking.set_title(0, "Thinking")
        self.tools = w.VBox([])  # one line per tool call and per result, as they happen
        self.box = StreamBox(
            [w.HBox([self.header, self.button]), self.thinking, self.tools, self.frozen, self.body],
            layout=w.Layout(border="1px solid #ddd", padding="4px 8px", margin="2px 0"),
        )
        self.box.view = self
        self._coalescer = Coalescer(self._render_body, interval)
        self._thoughts = Coalescer(self._render_thinking, interval)
        self._render_header()
        self._render_body("")

    @property
    def text(self) -> str:
        return self._coalescer.text

    @property
    def frames(self) -> int:
        return self._coalescer.flushes

    def _clicked(self, _button: Any) -> None:
        if self.on_cancel is not None:
            self.on_cancel()

    def _render_header(self) -> None:
        color = STATE_COLORS.get(self.state, "#888")
        note = f' <span style="color:#888">({html.escape(self.note)})</span>' if self.note else ""
        self.header.value = (
            f"<b>{html.escape(self.label)}</b>{note} · "
            f'<span style="color:{color}">{self.state}</span>'
        )

    def _render_body(self, text: str, error: str | None = None) -> None:
        """One frame: only the tail after the frozen segments is sent. When the tail
        outgrows SEGMENT characters, its first part is frozen into a widget of its own, so
        a frame's size stays bounded however long the answer gets."""
        tail = text[self._frozen_len :]
        if len(tail) > SEGMENT:
            cut = max(tail.rfind("\n", 0, SEGMENT), tail.rfind(" ", 0, SEGMENT)) + 1 or SEGMENT
            self.frozen.children = (*self.frozen.children, w.HTML(_pre(tail[:cut])))
            self._frozen_len += cut
            tail = tail[cut:]
        err = (
            f'<div style="color:#d93025;white-space:pre-wrap">{html.escape(error)}</div>'
            if error
            else ""
        )
        self.body.value = (
            f"{_pre(tail)}{err}"
            f'<div style="color:#888;font-size:smaller">{html.escape(self._stats.line())}</div>'
        )

    def _render_thinking(self, text: str) -> None:
        self.thinking_text.value = f'<div style="color:#666">{_pre(text)}</div>'

    def append_reasoning(self, piece: str) -> None:
        if self.thinking.layout.display == "none":
            self.thinking.layout.display = None
        if self.state != "streaming":
            self.state = "streaming"
            self._render_header()
        self._thoughts.add(piece)

    def tool_event(self, line: str) -> None:
        self.tools.children = (*self.tools.children, w.HTML(_pre(line)))

    def _clear_text(self) -> None:
        self.frozen.children = ()
        self._frozen_len = 0

    def start(self) -> None:
        if self.state in ("done", "failed", "cancelled"):  # a repeat run in the same pane
            self._coalescer = Coalescer(self._render_body, self._coalescer.interval)
            self._clear_text()
            self.button.disabled = False
            self.button.button_style = "warning"
        self.state = "waiting"
        self._render_header()

    def append(self, piece: str) -> None:
        if self.state != "streaming":
            self.state = "streaming"
            self._render_header()
        self._coalescer.add(piece)

    def update_stats(self, stats: Stats) -> None:
        self._stats = stats

    def finish(self, state: str, stats: Stats, error: str | None = None) -> None:
        self._stats = stats
        self._thoughts.close()
        text = self._coalescer.close()
        self.state = state
        self.button.disabled = True
        self.button.button_style = ""
        self._render_header()
        if state == "done":
            self._clear_text()  # the answer is published as a regular output below
            self._render_body("", None)
        else:
            self._render_body(text, error)

    def show_final(self) -> bool:
        return True

    def static_html(self) -> str:
        """The pane as it looks now, as plain HTML (no widget models): header, the thinking
        (collapsed, when there was any), tool calls, text and stats."""
        parts = []
        if self.thinking.layout.display != "none":
            parts.append(
                f"<details><summary>Thinking</summary>{self.thinking_text.value}</details>"
            )
        parts += [child.value for child in self.tools.children]
        parts += [child.value for child in self.frozen.children]
        return static_pane(self.header.value, [*parts, self.body.value])

    def static_text(self) -> str:
        return f"{self.label} · {self.state} · {self._stats.line()}"


class ComparisonGrid(w.VBox):
    """Panes side by side plus one Cancel-all button."""

    cancel_all: w.Button
    views: list[WidgetView]

    def static_html(self) -> str:
        columns = min(len(self.views), 3)
        panes = "".join(v.static_html() for v in self.views)
        return (
            f'<div style="display:grid;grid-template-columns:repeat({columns}, minmax(0, 1fr));'
            f'gap:6px">{panes}</div>'
        )

    def static_text(self) -> str:
        return "\n".join(v.static_text() for v in self.views)

    def __repr__(self) -> str:
        return f"n3_notebook comparison of {len(self.children[1].children)} models"


def comparison_grid(views: list[WidgetView]) -> ComparisonGrid:
    columns = min(len(views), 3)
    cancel_all = w.Button(
        description="Cancel all",
        icon="stop",
        button_style="danger",
        layout=w.Layout(width="auto", align_self="flex-start"),
    )
    grid = w.GridBox(
        [v.box for v in views],
        layout=w.Layout(grid_template_columns=f"repeat({columns}, minmax(0, 1fr))", grid_gap="6px"),
    )
    box = ComparisonGrid([cancel_all, grid])
    box.cancel_all = cancel_all
    box.views = views
    return box


def chain_panel(views: list[WidgetView], on_cancel: Callable[[], None]) -> ChainPanel:
    """Step panes one under another, with a Cancel button for the whole chain."""
    cancel_all = w.Button(
        description="Cancel chain",
        icon="stop",
        button_style="danger",
        layout=w.Layout(width="auto", align_self="flex-start"),
    )
    cancel_all.on_click(lambda _b: on_cancel())
    box = ChainPanel([cancel_all, w.VBox([v.box for v in views])])
    box.cancel_all = cancel_all
    box.views = views
    return box


class ChainPanel(w.VBox):
    cancel_all: w.Button
    views: list[WidgetView]

    def static_html(self) -> str:
        return "<div>" + "".join(v.static_html() for v in self.views) + "</div>"

    def static_text(self) -> str:
        return "\n".join(v.static_text() for v in self.views)

    def __repr__(self) -> str:
        return f"n3_notebook chain of {len(self.children[1].children)} steps"
