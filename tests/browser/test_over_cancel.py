"""The `%%llm --over` progress widget in a real JupyterLab, in headless Chromium: the map
runs over 300 rows against the slow offline emulator, the bar and the status line move,
Cancel stops the map, the finished rows stay in the cell's variable, and the emulator's
records show that nothing is in flight and no request starts after the Cancel."""

from __future__ import annotations

import re

import nbformat
import pytest

from .conftest import Lab
from .test_jupyterlab import open_notebook, output_text, run_cell, shot, wait_done, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

ROWS = 300
NOTEBOOK = "over-cancel.ipynb"
DONE = re.compile(r"(\d+)/(\d+) done, (\d+) failed, (\d+) in flight")
CELLS = [
    "%load_ext n3_notebook\n%llm offline auto\n" + f'rows = [f"item {{i}}" for i in range({ROWS})]',
    "%%llm emulator:demo --over rows -o out -n 8\nSay {row}",
    """import asyncio
from n3_notebook.emulator import get_offline_emulator

emu = get_offline_emulator()
await asyncio.sleep(0.5)
before = len(emu.records)
await asyncio.sleep(1.0)
records = emu.records
print("cancelled:", out.cancelled)
print("rows kept:", sum(r is not None for r in out), "of", len(out), "errors:", len(out.errors))
print("requests:", len(records), "new after cancel:", len(records) - before)
print("in flight:", sum(r.closed_at is None for r in records))
print("completed:", sum(r.completed for r in records))
print("closed by the client:", sum(r.client_disconnected for r in records))""",
]


def _write_notebook(lab: Lab) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in CELLS]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)"}
    nbformat.write(nb, str(lab.root / NOTEBOOK))


def _count(out: str, label: str) -> int:
    m = re.search(rf"{label}: (\d+)", out)
    assert m, f"no {label!r} in {out!r}"
    return int(m.group(1))


def test_cancel_in_the_progress_widget_stops_the_map(page, lab) -> None:
    _write_notebook(lab)
    cells = open_notebook(page, lab, NOTEBOOK)
    wait_done(run_cell(page, cells, 0), 30)

    over = run_cell(page, cells, 1)
    cancel = over.locator("button", has_text="Cancel").first
    cancel.wait_for(timeout=30_000)
    status = over.locator(".widget-html-content", has_text="in flight").first

    def progress() -> tuple[int, int, int]:
        m = DONE.search(status.inner_text())
        return (0, 0, 0) if m is None else (int(m[1]), int(m[2]), int(m[4]))

    wait_until(lambda: progress()[0] >= 10, "ten rows done", 60)
    done_before, total, in_flight = progress()
    assert total == ROWS and 0 < in_flight <= 10, progress()
    assert done_before < ROWS // 2, "the map ran too fast to cancel halfway"
    shot(page, over, "browser-07-over-running.png")

    cancel.click()
    wait_done(over, 15)  # the cell ends normally after a Cancel
    assert "Error" not in output_text(over)
    cancelled = over.locator("button", has_text="cancelled")
    wait_until(lambda: cancelled.count() == 1, "the button to say cancelled", 5)
    assert cancelled.first.is_disabled()
    done_after = progress()[0]
    assert done_before <= done_after < ROWS
    assert f"{done_after} answers, 0 errors" in output_text(over)  # the result's repr
    shot(page, over, "browser-07-over-cancelled.png")

    check = run_cell(page, cells, 2)
    wait_done(check, 30)
    out = output_text(check)
    assert "cancelled: True" in out, out
    kept = _count(out, "rows kept")
    assert done_after <= kept < ROWS, (done_after, kept, out)
    assert _count(out, "errors") == 0, out
    assert _count(out, "new after cancel") == 0, out
    assert _count(out, "in flight") == 0, out
    requests = _count(out, "requests")
    completed = _count(out, "completed")
    # every kept row was answered whole; every other request was closed by our side
    assert kept <= completed and completed + _count(out, "closed by the client") == requests
    assert requests - kept <= 10, out  # at most the in-flight window was cut off
