"""In a kernel: calls are logged with their notebook and cell; %llm log and %llm dashboard."""

from __future__ import annotations

from pathlib import Path

import pytest

from n3_notebook.emulator import run_emulator

from .conftest import KEY, loaded_kernel

pytestmark = pytest.mark.kernel


def test_cells_are_logged_with_notebook_and_cell(tmp_path: Path) -> None:
    with run_emulator(token_delay=0, first_token_delay=0) as emu:
        env = {
            "OPENAI_BASE_URL": emu.base_url("openai"),
            "OPENAI_API_KEY": KEY,
            "N3_LOG_DB": str(tmp_path / "log.db"),
            "JPY_SESSION_NAME": "/home/me/analysis.ipynb",  # what Jupyter Server sets
        }
        with loaded_kernel(env) as k:
            ran = k.run("%%llm openai:gpt-4o-mini --no-widget\nWhere was I asked?")
            assert ran.status == "ok", ran.text()
            ex = k.run(
                "import n3_notebook.log as _l\n_c = _l.query()[-1]\nprint(_c.notebook, _c.cell)"
            )
            assert ex.text().split() == ["/home/me/analysis.ipynb", "2"]  # 1 was %load_ext
            shown = k.run("%llm log -n 1 -o calls")
            assert shown.status == "ok" and "Where was I asked?" in shown.text()
            assert k.run("print(len(calls))").text().strip() == "1"
            board = k.run("%llm dashboard --since 1h")
            assert board.status == "ok" and "openai:gpt-4o-mini" in board.text()
            assert k.run("%llm log off").status == "ok"
            k.run("%%llm openai:gpt-4o-mini --no-widget\nNot logged")
            k.run("%llm log on")
            ex = k.run("print(len(_l.query()))")
            assert ex.text().strip() == "1"


def test_a_live_dashboard_refreshes_while_requests_run(tmp_path: Path) -> None:
    with run_emulator(token_delay=0.005, first_token_delay=0) as emu:
        env = {
            "OPENAI_BASE_URL": emu.base_url("openai"),
            "OPENAI_API_KEY": KEY,
            "N3_LOG_DB": str(tmp_path / "log.db"),
        }
        with loaded_kernel(env) as k:
            assert k.run("%%llm openai:gpt-4o-mini --no-widget\nfirst").status == "ok"
            k.run("import n3_notebook.jupyter.log_commands as _m\n_m.LIVE_INTERVAL = 0.2")
            bg = k.run("%%llm openai:gpt-4o-mini~long:300 --background --no-widget -o late\nx")
            assert bg.status == "ok", bg.text()
            assert k.run("_late = _").status == "ok"  # the handle (`late` is bound at the end)
            live = k.run("%llm dashboard --since 1h --live")
            assert live.status == "ok", live.text()
            waited = k.run("await _late", timeout=30)
            assert waited.status == "ok", waited.text()
            k.run("import asyncio\nawait asyncio.sleep(0.8)")  # the refreshes after the end
            k.pump(0.3)
    updates = [o for o in live.outputs if o["msg_type"] == "update_display_data"]
    assert updates, live.outputs
    assert "~long:300" in updates[-1]["content"]["data"]["text/plain"]  # the late call is in
