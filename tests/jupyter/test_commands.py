"""%llm and %chain line commands on a session."""

from __future__ import annotations

import pytest

from n3_notebook.core import registry
from n3_notebook.jupyter.chain_cell import run_chain_cell
from n3_notebook.jupyter.chain_commands import chain_command
from n3_notebook.jupyter.commands import COMMANDS
from n3_notebook.jupyter.errors import CellError
from n3_notebook.jupyter.llm_cell import run_llm_cell

from .conftest import KEY
from .test_chain_cell import CHAIN


def run(session, line: str):
    name, *args = line.split()
    return COMMANDS[name](session, args)


async def test_providers_models_and_aliases(session, capsys):
    table = repr(run(session, "providers"))
    assert "openai" in table and "set" in table and KEY not in table
    run(session, "alias quick openai:gpt-4o-mini")
    try:
        assert "quick → openai:gpt-4o-mini" in repr(run(session, "models openai"))
        await run_llm_cell(session, "quick -o r", "Hi")
        assert session.namespace["r"].model == "gpt-4o-mini"
    finally:
        run(session, "unalias quick")
    assert "quick" not in registry.aliases
    with pytest.raises(CellError, match="no such alias"):
        run(session, "unalias quick")


async def test_last_cancel_and_reset(session, capsys):
    assert run(session, "last") is None
    await run_llm_cell(session, "openai:gpt-4o-mini --chat", "Hi")
    assert run(session, "last") is session.last and session.history
    run(session, "reset")
    assert session.history == []
    run(session, "cancel")
    assert "nothing is running" in capsys.readouterr().out
    h = await run_llm_cell(session, "openai:gpt-4o-mini~long:5000 --background", "Long")
    run(session, "cancel all")
    assert "cancelled 1 request(s)" in capsys.readouterr().out
    kept = await h  # cancelled before it began: nothing arrived
    assert h.done() and (kept is None or kept.finish_reason == "cancelled")


async def test_chain_show_and_export(session, tmp_path, capsys):
    await run_chain_cell(session, "explain --define", CHAIN)
    chain_command(session, ["show", "explain"])
    assert "step outline: openai:gpt-4o-mini" in capsys.readouterr().out
    chain_command(session, ["export", "explain", str(tmp_path / "c.chain")])
    assert (tmp_path / "c.chain").read_text().startswith("input audience")
    with pytest.raises(CellError, match="usage"):
        chain_command(session, ["frobnicate"])
