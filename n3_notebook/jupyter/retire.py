"""A finished stream costs no live comm: its widget's output is replaced by static HTML of
what it showed (header, state, stats, partial text or error) and every widget model in it
is closed, its layouts and styles too. A saved notebook then shows the same pane as plain
HTML (GitHub, nbviewer), and a long session keeps only the running cells' models alive."""

from __future__ import annotations

import uuid
from typing import Any

import ipywidgets as w  # type: ignore[import-untyped]  # no stubs or py.typed

__all__ = ["BOX_STYLE", "close_widgets", "new_display_id", "static_pane"]

#: the look of a pane's border, shared by the live widget and its static copy
BOX_STYLE = "border:1px solid #ddd;padding:4px 8px;margin:2px 0"


def new_display_id() -> str:
    return uuid.uuid4().hex


def close_widgets(widget: Any) -> int:
    """Close `widget`, its children, and their layout and style models; how many closed."""
    closed = 0
    for child in getattr(widget, "children", None) or ():
        closed += close_widgets(child)
    for name in ("layout", "style"):
        part = getattr(widget, name, None)
        if isinstance(part, w.Widget) and part.comm is not None:
            part.close()
            closed += 1
    if isinstance(widget, w.Widget) and widget.comm is not None:
        widget.close()
        closed += 1
    return closed


def static_pane(header: str, parts: list[str]) -> str:
    """A pane as HTML: the header's markup, then its body's (already escaped) markup."""
    return (
        f'<div class="n3-pane" style="{BOX_STYLE}"><div class="n3-pane-header">{header}</div>'
        f"{''.join(parts)}</div>"
    )
