"""Comparisons (%%llm with several models, --repeat) run directly with a session."""

from __future__ import annotations

import asyncio

import pytest

from n3_notebook.core.compare import ComparisonResult
from n3_notebook.jupyter.errors import CellError
from n3_notebook.jupyter.handle import LLMHandle
from n3_notebook.jupyter.llm_cell import run_llm_cell

from .conftest import until

MODELS = "openai:gpt-4o-mini gemini:gemini-2.0-flash"


async def test_every_model_answers_and_a_table_follows(session, shown, emu, capsys):
    assert await run_llm_cell(session, f"{MODELS} -o cmp", "Compare {topic}") is None
    result = session.namespace["cmp"]
    assert isinstance(result, ComparisonResult) and session.last is result
    assert set(result.responses) == {"openai:gpt-4o-mini", "gemini:gemini-2.0-flash"}
    assert all(r is not None and r.finish_reason == "stop" for r in result.responses.values())
    assert len(result.rows) == 2 and not result.errors
    assert shown[-1] is result  # the summary table comes last
    assert "#### openai:gpt-4o-mini" in shown.markdown()[-1]
    out = capsys.readouterr().out
    assert "── gemini:gemini-2.0-flash ──" in out  # each answer printed whole
    (first, second) = emu.records[-2:]
    assert first.opened_at < second.closed_at and second.opened_at < first.closed_at


async def test_one_failing_model_does_not_stop_the_others(session):
    await run_llm_cell(session, "openai:gpt-4o-mini nosuch:model -o cmp", "Hi")
    result = session.namespace["cmp"]
    assert result.responses["openai:gpt-4o-mini"].finish_reason == "stop"
    assert result.responses["nosuch:model"] is None and "nosuch" in result.errors["nosuch:model"]


async def test_repeat_runs_each_model_n_times(session, emu):
    await run_llm_cell(session, "openai:gpt-4o-mini --repeat 3 -o rep", "Hi")
    result = session.namespace["rep"]
    assert len(result.runs["openai:gpt-4o-mini"]) == 3 and len(emu.records) == 3


async def test_background_comparison_gives_the_result(session):
    h = await run_llm_cell(session, f"{MODELS} --background", "Hi")
    assert isinstance(h, LLMHandle)
    result = await h
    assert isinstance(result, ComparisonResult) and len(result.rows) == 2


async def test_widget_grid_is_shown_with_one_pane_per_model(session, shown):
    session.widgets = True
    await run_llm_cell(session, MODELS, "Hi")
    grids = [o for o in shown if "comparison of 2 models" in repr(o)]
    assert len(grids) == 1 and grids[0].cancel_all.disabled


async def test_interrupt_keeps_the_table_and_ends_short(session, emu, shown):
    cell = asyncio.ensure_future(
        run_llm_cell(session, "openai:gpt-4o-mini~long:5000 gemini:gemini-2.0-flash~long:5000", "x")
    )
    await until(lambda: len(emu.records) == 2 and all(r.chunks_sent > 3 for r in emu.records))
    cell.cancel()
    with pytest.raises(CellError, match="interrupted"):
        await cell
    assert isinstance(session.last, ComparisonResult)
    assert all(r.finish_reason == "cancelled" for r in session.last.responses.values())
    for i in (-1, -2):
        assert (await emu.wait_for_close(i, timeout=2.0)).client_disconnected
