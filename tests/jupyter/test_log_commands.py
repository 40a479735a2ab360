"""%llm log and %llm dashboard on a session, and the cell a call is logged with."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import n3_notebook.log as log
from n3_notebook.jupyter.commands import COMMANDS
from n3_notebook.jupyter.errors import CellError
from n3_notebook.jupyter.llm_cell import run_llm_cell


@pytest.fixture
def log_db(tmp_path: Path) -> Iterator[Path]:
    before = log.status()
    log.configure(path=tmp_path / "log.db", enabled=True, store_text=True)
    yield tmp_path / "log.db"
    log.configure(path=before.path, enabled=before.enabled, store_text=before.store_text)


def run(session, line: str):
    name, *args = line.split()
    return COMMANDS[name](session, args)


async def test_log_shows_the_last_calls(session, log_db, capsys):
    await run_llm_cell(session, "openai:gpt-4o-mini", "First question about {topic}")
    await run_llm_cell(session, "openai:gpt-4o-mini", "Second question")
    frame = run(session, "log -n 1 -o calls")
    assert list(frame["prompt"]) == ["Second question"]
    assert session.namespace["calls"] is frame
    assert list(run(session, "log --search tides")["prompt"]) == ["First question about tides"]
    run(session, "log --full --search Second")
    out = capsys.readouterr().out
    assert "[user]\nSecond question" in out and "[answer]" in out
    assert run(session, "log --model nothing-like-it") is None
    assert "no calls logged that match" in capsys.readouterr().out


async def test_log_off_and_on(session, log_db, capsys):
    run(session, "log off")
    assert "call log off" in capsys.readouterr().out and not log.is_enabled()
    await run_llm_cell(session, "openai:gpt-4o-mini", "Not logged")
    run(session, "log on")
    await run_llm_cell(session, "openai:gpt-4o-mini", "Logged")
    assert [c.prompt for c in log.query()] == ["Logged"]
    run(session, "log status")
    assert "call log on" in capsys.readouterr().out


async def test_bad_options_are_one_paragraph(session, log_db, capsys):
    with pytest.raises(CellError, match="unrecognized arguments: --bogus"):
        run(session, "log --bogus")
    with pytest.raises(CellError, match="cannot read the time window"):
        run(session, "dashboard --since yesterday")
    run(session, "log --help")
    assert "--search" in capsys.readouterr().out


async def test_dashboard(session, log_db):
    await run_llm_cell(session, "openai:gpt-4o-mini", "Hi")
    shown = run(session, "dashboard --since 1h")
    bundle = shown._repr_mimebundle_()
    assert "openai:gpt-4o-mini" in bundle["text/plain"] and "<table>" in bundle["text/html"]
    pytest.importorskip("matplotlib")
    assert bundle["image/png"].startswith(b"\x89PNG")
