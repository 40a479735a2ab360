"""Side-by-side comparison (%%llm with several models) and %%chain in a real kernel
(jupyter_client driving ipykernel), the emulator on loopback."""

from __future__ import annotations

import json
import time

import pytest

from n3_notebook.chain import Chain
from n3_notebook.emulator import expected_answer, run_emulator

from .conftest import KEY, loaded_kernel

pytestmark = pytest.mark.kernel

EXAMPLE = """\
input topic = "solid-state batteries"
step outline: openai:gpt-4o-mini
    system: You are concise.
    List three key questions about {topic}.
step answers: anthropic:claude-3-5-haiku-latest, temperature=0.2
    Answer each question briefly: {outline}
step summary: gemini:gemini-2.0-flash
    Summarize for a newcomer: {answers}
"""


@pytest.fixture(scope="module")
def emu():
    with run_emulator(token_delay=0.003, first_token_delay=0.0) as e:
        yield e


@pytest.fixture(scope="module")
def kernel(emu):
    env = {
        "OPENAI_BASE_URL": emu.base_url("openai"),
        "OPENAI_API_KEY": KEY,
        "ANTHROPIC_BASE_URL": emu.base_url("anthropic"),
        "ANTHROPIC_API_KEY": KEY,
        "GEMINI_BASE_URL": emu.base_url("gemini"),
        "GEMINI_API_KEY": "AIzaKERNELtestFAKEkey0123456789",
    }
    with loaded_kernel(env) as k:
        yield k


def pump_until(kernel, cond, timeout=10.0, what="condition"):
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, f"{what} not reached"
        kernel.pump(0.02)


def buttons(ex, description: str) -> list[str]:
    return [
        c["comm_id"]
        for c in ex.comm_opens
        if c["data"]["state"].get("_model_name") == "ButtonModel"
        and c["data"]["state"].get("description") == description
    ]


def html_values(ex) -> dict[str, str]:
    """comm id -> the latest value of every HTML widget the cell opened."""
    values = {
        c["comm_id"]: c["data"]["state"].get("value", "")
        for c in ex.comm_opens
        if c["data"]["state"].get("_model_name") == "HTMLModel"
    }
    for _, comm_id, data in ex.widget_updates:
        if comm_id in values and "value" in data.get("state", {}):
            values[comm_id] = data["state"]["value"]
    return values


def header_states(ex) -> dict[str, str]:
    """pane label -> the state its header shows last."""
    out = {}
    for value in html_values(ex).values():
        if value.startswith("<b>"):
            label = value[3 : value.index("</b>")]
            out[label] = value.rsplit(">", 2)[-2].split("<")[0]
    return out


def answer(model: str, prompt: str, **kw) -> str:
    provider, _, name = model.partition(":")
    return expected_answer(provider, name, [{"role": "user", "content": prompt}], **kw).text


def wait_streaming(kernel, emu, n: int, chunks: int = 5) -> None:
    pump_until(
        kernel,
        lambda: len(emu.records) >= n and all(r.tokens_sent >= chunks for r in emu.records[:n]),
        what=f"{n} streams",
    )


def assert_all_closed_by_client(emu, n: int, since: float, bound: float = 1.0) -> None:
    records = [emu.wait_for_close_sync(i, timeout=3.0) for i in range(n)]
    assert len(emu.records) == n
    for rec in records:
        assert rec.client_disconnected and not rec.completed, rec
        assert rec.closed_at - since < bound
    assert emu.open_connections() == 0


# ----------------------------------------------------------------------------- comparison


def test_compare_streams_side_by_side(kernel, emu):
    models = ["openai:gpt-4o-mini", "gemini:gemini-2.0-flash"]
    ex = kernel.run(f"%%llm {' '.join(models)} -o cmp\nWhy is the sea salty?", timeout=60)
    assert ex.status == "ok", ex.text()
    a, b = emu.records
    assert a.opened_at < b.closed_at and b.opened_at < a.closed_at  # both at once
    assert len(buttons(ex, "Cancel all")) == 1
    assert len(buttons(ex, "Cancel")) == 2  # one pane (with its own Cancel) per model
    grids = [c for c in ex.comm_opens if c["data"]["state"].get("_model_name") == "GridBoxModel"]
    assert len(grids) == 1
    states = header_states(ex)
    assert states == {m: "done" for m in models}
    markdown = ex.data("text/markdown")[0]
    for m in models:
        assert f"#### {m}" in markdown
        assert answer(m, "Why is the sea salty?") in markdown
    assert "<table>" in ex.data("text/html")[-1]
    out = kernel.run(
        "print(type(cmp).__name__, list(cmp.responses) == list(cmp.runs), len(cmp.rows))\n"
        "print(*[cmp[m].finish_reason for m in cmp.responses], cmp.errors)\n"
        "print(*[r['runs'] for r in cmp.rows], *[r['cost_usd'] > 0 for r in cmp.rows])"
    ).text()
    assert out.split("\n")[:3] == [
        "ComparisonResult True 2",
        "stop stop {}",
        "1 1 True True",
    ], out


def test_compare_one_failing_model_does_not_stop_the_others(kernel, emu):
    models = ["openai:gpt-4o-mini", "cohere:command-r-plus", "gemini:gemini-2.0-flash~invalid_key"]
    ex = kernel.run(f"%%llm {' '.join(models)} -n 20 -o cmp2\nName a fish", timeout=60)
    assert ex.status == "ok", ex.text()
    markdown = ex.data("text/markdown")[0]
    assert answer(models[0], "Name a fish", max_tokens=20) in markdown
    assert "CO_API_KEY" in markdown  # no key: shown in its pane and the output, not raised
    assert "API key not valid" in markdown  # Gemini answers a bad key with a 400
    states = header_states(ex)
    assert states[models[0]] == "done"
    assert states["cohere:command-r-plus"] == "failed"
    assert states["gemini:gemini-2.0-flash~invalid_key"] == "failed"
    assert KEY not in "".join(html_values(ex).values()) + ex.text()
    out = kernel.run(
        "print(sorted(cmp2.errors))\n"
        "print([(r['model'], r['finish_reason'], bool(r['error'])) for r in cmp2.rows])"
    ).text()
    assert "['cohere:command-r-plus', 'gemini:gemini-2.0-flash~invalid_key']" in out
    assert "('openai:gpt-4o-mini', 'length', False)" in out
    assert "('cohere:command-r-plus', 'error', True)" in out
    assert len(emu.records) == 2  # cohere sent nothing


def test_compare_repeat_reports_medians(kernel, emu):
    ex = kernel.run(
        "%%llm openai:gpt-4o-mini gemini:gemini-2.0-flash --repeat 3 -n 15 -o rep\nCount",
        timeout=60,
    )
    assert ex.status == "ok", ex.text()
    assert len(emu.records) == 6
    out = kernel.run(
        "import statistics\n"
        "for m, runs in rep.runs.items():\n"
        "    row = next(r for r in rep.rows if r['model'] == m)\n"
        "    med = statistics.median(r.latency for r in runs)\n"
        "    print(m, len(runs), row['runs'], abs(row['total_s'] - med) < 1e-9, "
        "rep[m] is runs[-1])"
    ).text()
    assert out.split("\n")[:2] == [
        "openai:gpt-4o-mini 3 3 True True",
        "gemini:gemini-2.0-flash 3 3 True True",
    ], out


def test_cancel_all_stops_every_stream(kernel, emu):
    ex = kernel.submit(
        "%%llm openai:gpt-4o-mini~long:3000 gemini:gemini-2.0-flash~long:3000 -o cc\nStory"
    )
    pump_until(kernel, lambda: buttons(ex, "Cancel all"), what="the grid")
    wait_streaming(kernel, emu, 2)
    kernel.click(buttons(ex, "Cancel all")[0])
    clicked = time.monotonic()
    kernel.wait(ex, 30)
    assert ex.status == "ok", ex.text()
    assert_all_closed_by_client(emu, 2, clicked)
    assert set(header_states(ex).values()) == {"cancelled"}
    out = kernel.run("print(*[r.finish_reason for r in cc.responses.values()])").text()
    assert out.split() == ["cancelled", "cancelled"]


def test_pane_cancel_stops_only_that_model(kernel, emu):
    ex = kernel.submit(
        "%%llm openai:gpt-4o-mini~long:3000 gemini:gemini-2.0-flash~long:120 -o pc\nStory"
    )
    pump_until(kernel, lambda: len(buttons(ex, "Cancel")) == 2, what="the panes")
    wait_streaming(kernel, emu, 2)
    kernel.click(buttons(ex, "Cancel")[0])  # the first pane: the long OpenAI stream
    kernel.wait(ex, 30)
    assert ex.status == "ok", ex.text()
    states = header_states(ex)
    assert states == {
        "openai:gpt-4o-mini~long:3000": "cancelled",
        "gemini:gemini-2.0-flash~long:120": "done",
    }
    assert emu.wait_for_close_sync(0).client_disconnected
    assert emu.records[1].completed


def test_interrupt_stops_a_comparison(kernel, emu):
    ex = kernel.submit(
        "%%llm openai:gpt-4o-mini~long:3000 gemini:gemini-2.0-flash~long:3000 -o ci\nStory"
    )
    wait_streaming(kernel, emu, 2)
    kernel.interrupt()
    sent = time.monotonic()
    kernel.wait(ex, 30)
    assert ex.status == "error"
    assert "interrupted" in ex.text() and "Traceback" not in ex.text()
    assert_all_closed_by_client(emu, 2, sent)
    out = kernel.run("print(*[r.finish_reason for r in ci.responses.values()], 1 + 1)").text()
    assert out.split() == ["cancelled", "cancelled", "2"]


def test_background_comparison_returns_a_handle(kernel, emu):
    ex = kernel.run("%%llm openai:gpt-4o-mini gemini:gemini-2.0-flash -n 10 --background\nHi")
    assert ex.status == "ok" and "running" in ex.text(), ex.text()
    out = kernel.run(
        "r = await Out[max(Out)]\n"
        "print(type(r).__name__, *[x.finish_reason for x in r.responses.values()])",
        timeout=60,
    ).text()
    assert out.split() == ["ComparisonResult", "length", "length"], out


# ----------------------------------------------------------------------------------- chains


def _expected_chain(topic: str) -> dict[str, str]:
    outline = expected_answer(
        "openai",
        "gpt-4o-mini",
        [{"role": "user", "content": f"List three key questions about {topic}."}],
        system="You are concise.",
    ).text
    answers = answer(
        "anthropic:claude-3-5-haiku-latest", f"Answer each question briefly: {outline}"
    )
    summary = answer("gemini:gemini-2.0-flash", f"Summarize for a newcomer: {answers}")
    return {"outline": outline, "answers": answers, "summary": summary}


def _outputs(kernel, var: str) -> dict:
    ex = kernel.run(f"import json; print(json.dumps({var}.as_dict()))")
    assert ex.status == "ok", ex.text()
    return json.loads(ex.text())


def test_chain_cell_runs_and_is_kept(kernel, emu, tmp_path):
    ex = kernel.run(f"%%chain research -o result\n{EXAMPLE}", timeout=60)
    assert ex.status == "ok", ex.text()
    expected = _expected_chain("solid-state batteries")
    markdown = ex.data("text/markdown")[0]
    for name, text in expected.items():
        assert f"#### {name}\n\n{text}" in markdown
    assert len(buttons(ex, "Cancel chain")) == 1
    assert len(buttons(ex, "Cancel")) == 3  # one pane per step
    assert set(header_states(ex).values()) == {"done"}
    assert [r.provider for r in emu.records] == ["openai", "anthropic", "gemini"]
    d = _outputs(kernel, "result")
    assert d["outputs"] == expected and d["name"] == "research"
    assert all(s["state"] == "done" for s in d["steps"].values())
    assert d["cost_usd"] > 0 and d["usage"]["total_tokens"] > 0

    listing = kernel.run("%chain list").text()
    assert "research: inputs topic; steps outline, answers, summary" in listing
    shown = kernel.run("%chain show research").text()
    assert Chain.parse(shown).to_text() == Chain.parse(EXAMPLE).to_text()

    emu.reset()
    ex = kernel.run('%chain run research topic="perovskites" -o r2', timeout=60)
    assert ex.status == "ok", ex.text()
    assert _outputs(kernel, "r2")["outputs"] == _expected_chain("perovskites")
    assert len(emu.records) == 3

    path = tmp_path / "research.n3"
    ex = kernel.run(f"%chain export research {path}")
    assert ex.status == "ok", ex.text()
    assert Chain.parse(path.read_text()).to_text() == Chain.parse(EXAMPLE).to_text()
    ex = kernel.run(f"%chain export research {tmp_path}/no/such/dir/x.n3")
    assert ex.status == "error" and "cannot write" in ex.text() and "Traceback" not in ex.text()


def test_chain_define_default_model_and_plain_text(kernel, emu):
    ex = kernel.run("%%chain quick --define\nstep a:\n    hi\nstep b:\n    {a}")
    assert ex.status == "ok" and "chain quick: a, b" in ex.text(), ex.text()
    assert emu.records == []
    ex = kernel.run(
        "%%chain -m gemini:gemini-2.0-flash --no-widget -o plain\n"
        "step a: max_tokens=10\n    hi\nstep b: openai:gpt-4o-mini, max_tokens=10\n    {a}",
        timeout=60,
    )
    assert ex.status == "ok", ex.text()
    assert not ex.comm_opens
    first = answer("gemini:gemini-2.0-flash", "hi", max_tokens=10)
    text = ex.text()
    assert "── a · gemini:gemini-2.0-flash ──" in text and first in text
    assert "── b · openai:gpt-4o-mini ──" in text
    assert answer("openai:gpt-4o-mini", first, max_tokens=10) in text
    assert [r.provider for r in emu.records] == ["gemini", "openai"]


def test_chain_failure_skips_dependents_in_the_notebook(kernel, emu):
    ex = kernel.run(
        "%%chain -o failing\n"
        "step bad: openai:gpt-4o-mini~invalid_key\n    x\n"
        "step child: openai:gpt-4o-mini\n    {bad}\n"
        "step other: gemini:gemini-2.0-flash, max_tokens=10\n    y\n",
        timeout=60,
    )
    assert ex.status == "ok", ex.text()
    markdown = ex.data("text/markdown")[0]
    assert "*failed: AuthenticationError" in markdown
    assert "*skipped: skipped because bad failed*" in markdown
    assert answer("gemini:gemini-2.0-flash", "y", max_tokens=10) in markdown
    states = header_states(ex)
    assert list(states.values()) == ["failed", "skipped", "done"]


BAD_CHAINS = {
    "%%chain\nstep a openai:gpt-4o-mini\n    hi": "line 2",
    "%%chain\nstep a: openai:gpt-4o-mini\n    {b}\nstep b: openai:gpt-4o-mini\n    {a}": "cycle",
    "%%chain\nstep a: openai:gpt-4o-mini\n    hi\nstep b: openai:gpt-4o-mini\n    {nowhere}": (
        "line 4"
    ),
    "%%chain\nstep a: openai:gpt-4o-mini\n    hi\nstep b: cohere:command-r-plus\n    {a}": (
        "CO_API_KEY"
    ),
    "%%chain\ninput x\nstep a: openai:gpt-4o-mini\n    {x}": "line 2",
    "%%chain --nope\nstep a: openai:gpt-4o-mini\n    hi": "Usage",
    "%chain run nosuch": "no chain named",
    "%%chain -o 1x\nstep a: openai:gpt-4o-mini\n    hi": "variable name",
    "%chain show": "usage",
    '%chain "unbalanced': "quotation",
}


def test_chain_errors_are_short_and_the_kernel_stays_usable(kernel, emu):
    for code, needle in BAD_CHAINS.items():
        ex = kernel.run(code, timeout=30)
        assert ex.status == "error", code
        text = ex.text()
        assert needle in text, (code, text)
        assert "Traceback" not in text and len(text.splitlines()) <= 3, (code, text)
    assert emu.records == []  # nothing was sent
    assert kernel.run("print(40 + 2)").text().strip() == "42"


def test_chain_cancel_button_closes_every_connection(kernel, emu):
    ex = kernel.submit(
        "%%chain slow -o sc\n"
        "step a: openai:gpt-4o-mini~long:3000\n    one\n"
        "step b: gemini:gemini-2.0-flash~long:3000\n    two\n"
        "step c: openai:gpt-4o-mini\n    after {a}\n"
    )
    pump_until(kernel, lambda: buttons(ex, "Cancel chain"), what="the chain panel")
    wait_streaming(kernel, emu, 2)
    kernel.click(buttons(ex, "Cancel chain")[0])
    clicked = time.monotonic()
    kernel.wait(ex, 30)
    assert ex.status == "ok", ex.text()
    assert_all_closed_by_client(emu, 2, clicked)
    time.sleep(0.2)
    assert len(emu.records) == 2  # c never started
    states = header_states(ex)
    assert list(states.values()) == ["cancelled", "cancelled", "cancelled"], states
    d = _outputs(kernel, "sc")
    assert {n: s["state"] for n, s in d["steps"].items()} == {
        "a": "cancelled",
        "b": "cancelled",
        "c": "cancelled",
    }
    assert d["steps"]["a"]["output_tokens"] > 0


def test_interrupt_stops_a_chain(kernel, emu):
    ex = kernel.submit(
        "%%chain -o si\n"
        "step a: openai:gpt-4o-mini~long:3000\n    one\n"
        "step b: gemini:gemini-2.0-flash~long:3000\n    two\n"
    )
    wait_streaming(kernel, emu, 2)
    kernel.interrupt()
    sent = time.monotonic()
    kernel.wait(ex, 30)
    assert ex.status == "error"
    assert "interrupted" in ex.text() and "Traceback" not in ex.text()
    assert_all_closed_by_client(emu, 2, sent)
    assert set(header_states(ex).values()) == {"cancelled"}
    d = _outputs(kernel, "si")
    assert {s["state"] for s in d["steps"].values()} == {"cancelled"}
