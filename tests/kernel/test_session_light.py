"""A long session stays light: finished %%llm cells leave static HTML, not live widget
models, so the kernel's live models stay bounded by the cells still running and its memory
flat (the issue measured 15 models per cell, never closed: 2,250 after 150 cells)."""

from __future__ import annotations

import json

import pytest

from n3_notebook.emulator import run_emulator

from .conftest import KEY, loaded_kernel

pytestmark = pytest.mark.kernel

CELLS = 150
PROBE = (
    "import json as _j, ipywidgets.widgets.widget as _w\n"
    "print(_j.dumps({'models': len(_w._instances), 'rss_kib': int(next(l.split()[1] for l in "
    "open('/proc/self/status') if l.startswith('VmRSS:')))}))"
)


def _probe(k) -> dict[str, int]:
    ex = k.run(PROBE)
    assert ex.status == "ok", ex.text()
    return json.loads(ex.text().strip().splitlines()[-1])


def test_many_cells_leave_no_live_models_and_flat_memory() -> None:
    with run_emulator(token_delay=0, first_token_delay=0) as emu:
        env = {"OPENAI_BASE_URL": emu.base_url("openai"), "OPENAI_API_KEY": KEY}
        with loaded_kernel(env) as k:
            for i in range(20):  # warm-up: imports, the provider, caches
                assert k.run(f"%%llm openai:gpt-4o-mini\nwarm-up {i}").status == "ok"
            before = _probe(k)
            html_outputs = 0
            for i in range(CELLS):
                ex = k.run(f"%%llm openai:gpt-4o-mini\nquestion {i}", timeout=60)
                assert ex.status == "ok", ex.text()
                html_outputs += sum(
                    1
                    for o in ex.outputs
                    if o["msg_type"] == "update_display_data"
                    and ">done<" in o["content"]["data"].get("text/html", "")
                )
            after = _probe(k)
    assert html_outputs == CELLS  # every pane became static HTML
    assert after["models"] - before["models"] <= 0, (before, after)
    assert after["rss_kib"] - before["rss_kib"] < 20 * 1024 * CELLS / 1000, (before, after)
