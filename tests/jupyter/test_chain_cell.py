"""%%chain and %chain run, run directly with a session."""

from __future__ import annotations

import asyncio

import pytest

from n3_notebook.chain import ChainResult
from n3_notebook.jupyter.chain_cell import run_chain_cell, run_chain_line
from n3_notebook.jupyter.chain_commands import chain_command
from n3_notebook.jupyter.errors import CellError

from .conftest import until

CHAIN = """input audience = "children"
step outline: openai:gpt-4o-mini
    Three questions about {topic} for {audience}.
step answer: gemini:gemini-2.0-flash
    Answer briefly: {outline}
"""


async def test_a_named_chain_runs_and_is_kept(session, shown, capsys):
    assert await run_chain_cell(session, "explain -o res", CHAIN) is None
    result = session.namespace["res"]
    assert isinstance(result, ChainResult) and result.ok and session.last is result
    assert list(result.outputs) == ["outline", "answer"]
    assert "explain" in session.chains
    summary = shown.markdown()[-1]
    assert "#### outline" in summary and "#### answer" in summary
    assert "── answer · gemini:gemini-2.0-flash ──" in capsys.readouterr().out


async def test_define_then_run_with_other_inputs(session, emu):
    await run_chain_cell(session, "explain --define", CHAIN)
    assert not emu.records
    await run_chain_line(session, "run explain audience=adults -o again")
    assert session.namespace["again"].inputs == {"audience": "adults"}
    assert "adults" in emu.records[0].body["messages"][-1]["content"]
    chain_command(session, ["list"])


async def test_a_failed_step_skips_its_dependents(session):
    text = CHAIN.replace("openai:gpt-4o-mini", "openai:gpt-4o-mini~invalid_key")
    await run_chain_cell(session, "-o res", text)
    result = session.namespace["res"]
    assert result.steps["outline"].state == "failed"
    assert result.steps["answer"].state == "skipped"


@pytest.mark.parametrize(
    ("line", "text", "needle"),
    [
        ("", "step a openai:gpt-4o-mini\n    hi", "line 2"),
        ("", "step a: nosuch:model\n    hi", "nosuch"),
        ("", "step a: openai:gpt-4o-mini\n    {nowhere}", "nowhere"),
        ("--frobnicate", CHAIN, "unrecognized arguments"),
        ("-o 1x", CHAIN, "variable name"),
    ],
)
async def test_mistakes_are_short_cell_errors(session, emu, line, text, needle):
    with pytest.raises(CellError, match=needle):
        await run_chain_cell(session, line, text)
    assert not emu.records


async def test_run_line_mistakes(session):
    with pytest.raises(CellError, match="no chain named 'nope'"):
        await run_chain_line(session, "run nope")
    await run_chain_cell(session, "explain --define", CHAIN)
    with pytest.raises(CellError, match="key=value"):
        await run_chain_line(session, "run explain adults")
    with pytest.raises(CellError, match="unknown input"):
        await run_chain_line(session, "run explain who=me")


async def test_interrupt_stops_every_step(session, emu):
    text = CHAIN.replace("openai:gpt-4o-mini", "openai:gpt-4o-mini~long:5000")
    cell = asyncio.ensure_future(run_chain_cell(session, "", text))
    await until(lambda: emu.records and emu.records[-1].chunks_sent > 3)
    cell.cancel()
    with pytest.raises(CellError, match="interrupted"):
        await cell
    assert session.last.steps["outline"].state == "cancelled"
    assert (await emu.wait_for_close(-1, timeout=2.0)).client_disconnected


async def test_widget_panel_has_one_pane_per_step(session, shown):
    session.widgets = True
    await run_chain_cell(session, "", CHAIN)
    panels = [o for o in shown if "chain of 2 steps" in repr(o)]
    assert len(panels) == 1 and panels[0].cancel_all.disabled
