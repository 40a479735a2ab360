"""%%llm --over (a template over rows) and %llm cache, run directly with a session."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from n3_notebook.core.cache import CACHE_DIR_ENV
from n3_notebook.core.map_compare import MapComparison
from n3_notebook.core.mapping import MapResult
from n3_notebook.jupyter.commands import COMMANDS
from n3_notebook.jupyter.errors import CellError
from n3_notebook.jupyter.llm_cell import run_llm_cell

from .conftest import until


@pytest.fixture(autouse=True)
def _cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path / "cache"))


async def test_over_a_list_of_dicts_fills_each_row(session, shown, emu):
    session.namespace["rows"] = [{"city": "Paris"}, {"city": "Oslo"}, {"city": "Lima"}]
    assert await run_llm_cell(session, "--over rows -o out -n 5", "Describe {city}") is None
    result = session.namespace["out"]
    assert isinstance(result, MapResult) and session.last is result
    assert len(result) == 3 and not result.errors
    prompts = sorted(r.body["messages"][-1]["content"] for r in emu.records)
    assert prompts == ["Describe Lima", "Describe Oslo", "Describe Paris"]
    assert shown  # a compact table (or the result) was displayed


async def test_several_models_compare_over_the_rows(session, shown, emu):
    session.namespace["qs"] = ["a", "b"]
    await run_llm_cell(
        session, "openai:gpt-4o-mini gemini:gemini-2.0-flash --over qs -o cmp -n 5", "Q {row}"
    )
    comparison = session.namespace["cmp"]
    assert isinstance(comparison, MapComparison)
    assert comparison.models == ["openai:gpt-4o-mini", "gemini:gemini-2.0-flash"]
    assert all(s["rows"] == 2 and s["errors"] == 0 for s in comparison.summary())
    assert comparison in shown


async def test_a_missing_field_or_rows_is_a_cell_error(session, emu):
    session.namespace["rows"] = [{"title": "x"}]
    with pytest.raises(CellError, match="title"):
        await run_llm_cell(session, "--over rows", "Summarise {text}")
    with pytest.raises(CellError, match="nowhere"):
        await run_llm_cell(session, "--over nowhere", "Summarise {row}")
    assert emu.records == []


async def test_cancel_keeps_the_finished_rows(session, emu):
    emu.set_pacing(0.005, 0)
    try:
        session.namespace["many"] = [str(i) for i in range(300)]
        task = asyncio.ensure_future(
            run_llm_cell(session, "--over many -o out --background", "Q {row}")
        )
        handle = await task
        await until(lambda: len(emu.records) > 15)
        handle.cancel()
        await until(lambda: "out" in session.namespace)
        partial = session.namespace["out"]
        assert isinstance(partial, MapResult) and partial.cancelled
        assert 0 < len([r for r in partial if r is not None]) < 300
    finally:
        emu.set_pacing(0.002, 0)


async def test_cache_command_and_flag(session, emu, capsys):
    session.namespace["rows"] = ["same"]
    await run_llm_cell(session, "--over rows -o a --cache -n 5", "Q {row}")
    await run_llm_cell(session, "--over rows -o b --cache -n 5", "Q {row}")
    assert session.namespace["b"].cached == 1 and len(emu.records) == 1
    COMMANDS["cache"](session, ["on"])
    assert session.settings.cache
    await run_llm_cell(session, "-n 5", "Plain same")  # a plain cell, cached by the session
    await run_llm_cell(session, "-n 5", "Plain same")
    assert len(emu.records) == 2
    table = COMMANDS["cache"](session, ["stats"])
    assert "entries" in repr(table) and "on" in repr(table)
    COMMANDS["cache"](session, ["clear"])
    assert "removed" in capsys.readouterr().out
    COMMANDS["cache"](session, ["off"])
    assert not session.settings.cache
    with pytest.raises(CellError, match="usage"):
        COMMANDS["cache"](session, ["sideways"])
