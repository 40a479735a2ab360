"""The streaming widget in a real JupyterLab, in headless Chromium.

04-streaming-and-cancel: a %%llm cell against a slow emulator model streams (the text and
the stats line grow between two samples), the Cancel button stops it (the header says
"cancelled", the text stops growing), and the next cells show that the response was kept
and that the emulator saw the client close the connection before the answer was complete.
02-compare-models: three panes stream side by side, and Cancel all stops them.
Screenshots go to test-artifacts/."""

from __future__ import annotations

import re
import time

import pytest

from .conftest import ARTIFACTS

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

KERNEL_IDLE = re.compile(r"Python 3 \(ipykernel\) \| Idle")
KERNEL_STATUS = re.compile(r"Python 3 \(ipykernel\) \| (\w+)")
TOKENS = re.compile(r"(\d+) tokens")


def open_notebook(page, lab, name: str):
    page.goto(lab.notebook_url(name))
    page.locator(".jp-Notebook .jp-CodeCell").first.wait_for(timeout=60_000)
    page.get_by_text(KERNEL_IDLE).wait_for(timeout=60_000)
    return page.locator(".jp-Notebook .jp-CodeCell")


def run_cell(page, cells, index: int):
    """Click into the cell's editor and press Shift+Enter, as a user does."""
    cell = cells.nth(index)
    cell.locator(".jp-InputArea-editor").click()
    page.keyboard.press("Shift+Enter")
    return cell


def wait_done(cell, timeout: float = 30.0) -> str:
    """Wait until the cell's prompt shows an execution count (not [*]); return it."""
    prompt = cell.locator(".jp-InputPrompt")
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        text = prompt.inner_text().strip()
        if re.fullmatch(r"\[\d+\]:", text):
            return text
        time.sleep(0.1)
    raise AssertionError(f"the cell did not finish in {timeout}s (prompt {text!r})")


def wait_until(condition, what: str, timeout: float = 20.0) -> None:
    """Poll a condition built on locators (they re-query the DOM; the widget replaces its
    HTML on every frame, so element handles go stale)."""
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def output_text(cell) -> str:
    return cell.locator(".jp-OutputArea").inner_text()


class Pane:
    """One stream widget: header (model, state), text (a long answer may be split over
    several <pre> segments), the stats line at the end, and Cancel."""

    def __init__(self, box) -> None:
        self.box = box
        html = box.locator(".widget-html-content")
        self.header, self.body = html.first, html.last
        self.pres = box.locator(".widget-html-content pre")
        self.cancel = box.locator("button", has_text="Cancel")

    def sample(self) -> tuple[str, str]:
        """(text so far, stats line)"""
        text = "".join(self.pres.all_inner_texts())
        return text, self.body.inner_text().strip().splitlines()[-1]

    def state(self) -> str:
        return self.header.inner_text()


class StaticPane(Pane):
    """A finished pane: the same header, text and stats as static HTML."""

    def __init__(self, box) -> None:
        self.box = box
        self.header = box.locator(".n3-pane-header")
        self.body = box
        self.pres = box.locator("pre")


def kernel_status(page) -> str:
    """The status bar's kernel state ("Idle", "Busy", ...)."""
    text = page.locator(".jp-StatusBar-TextItem", has_text="ipykernel").first.inner_text()
    m = KERNEL_STATUS.search(text)
    assert m, f"no kernel status in the status bar: {text!r}"
    return m.group(1)


def tokens_in(stats: str) -> int:
    m = TOKENS.search(stats)
    assert m, f"no token count in the stats line {stats!r}"
    return int(m.group(1))


def shot(page, cell, name: str) -> None:
    """The whole JupyterLab page, scrolled so that the cell's output is in the middle."""
    cell.locator(".jp-OutputArea").evaluate("el => el.scrollIntoView({block: 'center'})")
    page.screenshot(path=str(ARTIFACTS / name))


def test_stream_then_cancel_closes_the_connection(page, lab) -> None:
    cells = open_notebook(page, lab, "04-streaming-and-cancel.ipynb")
    setup = run_cell(page, cells, 0)
    setup.locator(".jp-OutputArea-output", has_text="Offline mode").wait_for(timeout=30_000)

    story = run_cell(page, cells, 1)  # %%llm emulator:demo~long:600 -o story
    box = story.locator(".widget-vbox", has=page.locator("button", has_text="Cancel")).first
    box.wait_for(timeout=30_000)
    pane = Pane(box)
    assert "emulator:demo~long:600" in pane.state()
    wait_until(lambda: len(pane.sample()[0]) > 20, "the first tokens")
    text1, stats1 = pane.sample()
    time.sleep(1.0)
    text2, stats2 = pane.sample()
    assert len(text2) > len(text1) and text2.startswith(text1), (text1, text2)
    assert tokens_in(stats2) > tokens_in(stats1), (stats1, stats2)
    assert stats1.startswith("first token") and "tok/s" in stats2, stats2
    assert "streaming" in pane.state()
    # the status bar says Busy the whole time the cell streams (JupyterLab's control
    # requests during the cell are answered with an idle of their own)
    seen = set()
    for _ in range(10):
        seen.add(kernel_status(page))
        time.sleep(0.1)
    assert seen == {"Busy"}, seen
    shot(page, story, "browser-04-streaming.png")

    pane.cancel.click()
    wait_done(story, 10)  # the cell ends normally after a Cancel
    assert "Error" not in output_text(story)
    wait_until(lambda: kernel_status(page) == "Idle", "the status bar to say Idle", 5)
    # the finished pane is static HTML of the same header, text and stats (no live widget)
    done = StaticPane(story.locator(".n3-pane").first)
    done.box.wait_for(timeout=5_000)
    assert story.locator(".widget-vbox").count() == 0
    assert "cancelled" in done.state() and "emulator:demo~long:600" in done.state()
    text3, stats4 = done.sample()
    assert len(text3) >= len(text2) and text3.startswith(text1), (text2, text3)
    assert "finish: cancelled" in stats4, stats4
    shot(page, story, "browser-04-cancelled.png")

    kept = run_cell(page, cells, 2)  # print(story.finish_reason, ...)
    wait_done(kept)
    assert output_text(kept).startswith("cancelled - "), output_text(kept)

    record = run_cell(page, cells, 3)  # the emulator's record of the request
    wait_done(record)
    out = output_text(record)
    assert "client closed the connection: True" in out, out
    assert "answer complete: False" in out, out
    sent = int(re.search(r"tokens sent: (\d+)", out).group(1))
    assert tokens_in(stats4) <= sent < 600, (sent, stats4)
    shot(page, record, "browser-04-connection-closed.png")


def test_comparison_grid_streams_side_by_side(page, lab) -> None:
    cells = open_notebook(page, lab, "02-compare-models.ipynb")
    setup = run_cell(page, cells, 0)
    setup.locator(".jp-OutputArea-output", has_text="Offline mode").wait_for(timeout=30_000)

    grid_cell = run_cell(page, cells, 1)  # three models in one %%llm cell
    grid = grid_cell.locator(".widget-gridbox").first
    grid.wait_for(timeout=30_000)
    boxes = grid.locator(":scope > .widget-vbox")
    assert boxes.count() == 3
    panes = [Pane(boxes.nth(i)) for i in range(3)]
    for pane in panes:
        wait_until(lambda pane=pane: len(pane.sample()[0]) > 20, "the first tokens in each pane")
    first = [p.sample() for p in panes]
    time.sleep(1.0)
    second = [p.sample() for p in panes]
    for (t1, s1), (t2, s2) in zip(first, second, strict=True):
        assert len(t2) > len(t1), (t1, t2)  # every pane grows at the same time
        assert tokens_in(s2) > tokens_in(s1), (s1, s2)
    xs = [boxes.nth(i).bounding_box() for i in range(3)]
    assert xs[0]["x"] < xs[1]["x"] < xs[2]["x"], xs  # side by side, not stacked
    assert abs(xs[0]["y"] - xs[2]["y"]) < 5, xs
    labels = [p.state() for p in panes]
    assert "openai:gpt-6-luna" in labels[0] and "gemini:gemini-3.5-flash-lite" in labels[2]
    shot(page, grid_cell, "browser-02-grid.png")

    grid_cell.locator("button", has_text="Cancel all").click()
    wait_done(grid_cell, 15)
    static = grid_cell.locator(".n3-pane")  # the grid, now static HTML
    wait_until(lambda: static.count() == 3, "the three panes as static HTML", 5)
    for i in range(3):
        assert "cancelled" in StaticPane(static.nth(i)).state()
    assert grid_cell.locator(".widget-gridbox").count() == 0
    assert "cancelled" in output_text(grid_cell)  # the summary table
