"""A finished stream leaves static HTML of its pane and no live widget model."""

from __future__ import annotations

import ipywidgets as w  # type: ignore[import-untyped]  # no stubs or py.typed
import ipywidgets.widgets.widget as widget_module  # type: ignore[import-untyped]
import pytest

from n3_notebook.jupyter.chain_cell import run_chain_cell
from n3_notebook.jupyter.errors import CellError
from n3_notebook.jupyter.llm_cell import run_llm_cell
from n3_notebook.jupyter.retire import close_widgets

from .test_chain_cell import CHAIN


def _live() -> int:
    return len(widget_module._instances)


def test_close_widgets_closes_layouts_and_styles_too() -> None:
    before = _live()
    box = w.VBox([w.HBox([w.HTML("a"), w.Button(description="b")]), w.VBox([w.HTML("c")])])
    made = _live() - before
    assert made >= 12  # boxes, HTMLs and a button, each with a layout (and a style)
    assert close_widgets(box) == made
    assert _live() == before


async def test_a_finished_cell_is_static_html(session, shown):
    session.widgets = True
    before = _live()
    await run_llm_cell(session, "openai:gpt-4o-mini", "Hi")
    assert _live() == before  # every model of the pane closed
    (static,) = shown.updates.values()
    assert "gpt-4o-mini" in static["text/html"] and ">done<" in static["text/html"]
    assert "tokens" in static["text/html"]  # the stats line
    assert "done" in static["text/plain"]
    assert shown.markdown()  # the answer is still published as an ordinary output


async def test_a_failed_cell_keeps_its_error_in_the_static_pane(session, shown):
    session.widgets = True
    with pytest.raises(CellError):
        await run_llm_cell(session, "openai:gpt-4o-mini~midstream_error:3", "Hi")
    (static,) = shown.updates.values()
    assert ">failed<" in static["text/html"] and "color:#d93025" in static["text/html"]


async def test_comparisons_and_chains_retire_too(session, shown):
    session.widgets = True
    before = _live()
    await run_llm_cell(session, "openai:gpt-4o-mini gemini:gemini-2.0-flash", "Hi")
    await run_chain_cell(session, "", CHAIN)
    assert _live() == before
    grid, panel = shown.updates.values()
    assert grid["text/html"].count(">done<") == 2 and "grid-template-columns" in grid["text/html"]
    assert panel["text/html"].count(">done<") == 2
