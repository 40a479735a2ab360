"""%%llm in a real kernel (jupyter_client driving ipykernel), the emulator on loopback."""

from __future__ import annotations

import time

import pytest

from n3_notebook.emulator import expected_answer

from .conftest import KEY

pytestmark = pytest.mark.kernel


def wait_for_button(kernel, ex, timeout=10.0):
    end = time.monotonic() + timeout
    while not ex.model_ids("ButtonModel"):
        assert time.monotonic() < end, "no widget appeared"
        kernel.pump(0.05)
    return ex.model_ids("ButtonModel")[0]


def pump_until(kernel, cond, timeout=10.0):
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, "condition not reached"
        kernel.pump(0.02)


def test_tokens_stream_progressively_and_answer_is_published(kernel, emu):
    ex = kernel.run("%%llm openai:gpt-4o-mini -o r\nWhat is SSE?", timeout=60)
    assert ex.status == "ok", ex.text()
    text_updates = [u for u in ex.widget_updates if "value" in u[2].get("state", {})]
    assert len(text_updates) >= 5  # the text grew in several frames before the cell ended
    spread = text_updates[-1][0] - text_updates[0][0]
    assert spread > 0.3
    expected = expected_answer(
        "openai", "gpt-4o-mini", [{"role": "user", "content": "What is SSE?"}]
    )
    assert ex.data("text/markdown") == [expected.text]
    check = kernel.run("print(r.finish_reason, r.usage.output_tokens, r.content == r.content)")
    assert check.text().split() == ["stop", str(expected.output_tokens), "True"]
    rec = emu.records[-1]
    assert rec.completed and rec.path == "/v1/chat/completions"
    assert KEY not in repr(emu.records)


def test_frames_are_coalesced_and_bounded(kernel):
    ex = kernel.run("%%llm openai:gpt-4o-mini~long:3000 -o r\nGo", timeout=90)
    assert ex.status == "ok", ex.text()
    elapsed = ex.widget_updates[-1][0] - ex.widget_updates[0][0]
    # 3,000 tokens at 10 ms each: ~30 s; one frame per token would be 3,000 messages
    assert len(ex.widget_updates) < 3000 / 3
    assert len(ex.widget_updates) / max(elapsed, 0.1) < 40
    # a frame carries the live tail, not the whole answer so far (which grows to ~15 kB)
    values = [
        len(u[2]["state"]["value"]) for u in ex.widget_updates if "value" in u[2].get("state", {})
    ]
    answer = ex.data("text/markdown")[0]
    assert len(answer) > 10_000
    assert max(values) < 8_000
    check = kernel.run("print(len(r.content), r.finish_reason)")
    assert check.text().split() == [str(len(answer)), "stop"]


def test_cancel_click_stops_stream_and_closes_connection(kernel, emu):
    ex = kernel.submit("%%llm openai:gpt-4o-mini~long:2000 -o rc\nA long story")
    button = wait_for_button(kernel, ex)
    pump_until(kernel, lambda: len(emu.records) == 1 and emu.records[-1].chunks_sent > 5)
    kernel.click(button)
    clicked = time.monotonic()
    kernel.wait(ex, 30)
    assert ex.status == "ok", ex.text()
    rec = emu.wait_for_close_sync(-1, timeout=2.0)
    assert rec.client_disconnected
    assert rec.closed_at - clicked < 0.2
    assert rec.chunks_sent < 2000
    out = kernel.run("print(rc.finish_reason, len(rc.content) > 0)")
    assert out.text().split() == ["cancelled", "True"]
    states = [u[2]["state"].get("value", "") for u in ex.widget_updates if "state" in u[2]]
    assert any("cancelled" in s for s in states)


def test_interrupt_stops_stream_and_kernel_stays_usable(kernel, emu):
    ex = kernel.submit("%%llm openai:gpt-4o-mini~long:2000 -o ri\nAnother long story")
    wait_for_button(kernel, ex)
    pump_until(kernel, lambda: len(emu.records) == 1 and emu.records[-1].chunks_sent > 5)
    kernel.interrupt()
    sent = time.monotonic()
    kernel.wait(ex, 30)
    assert ex.status == "error"
    assert ex.error["ename"] == "CellError" or "KeyboardInterrupt" in ex.text()
    assert "interrupted" in ex.text() and "Traceback" not in ex.text()
    assert len(ex.text().splitlines()) < 6
    rec = emu.wait_for_close_sync(-1, timeout=2.0)
    assert rec.client_disconnected and rec.closed_at - sent < 0.5
    out = kernel.run("print(ri.finish_reason, 1 + 1)")
    assert out.text().split() == ["cancelled", "2"]


def test_run_all_ordering(kernel):
    a = kernel.submit("%%llm openai:gpt-4o-mini -o first\nName a colour")
    b = kernel.submit("print('next cell sees:', first.finish_reason, len(first.content) > 10)")
    kernel.wait(a, 60)
    kernel.wait(b, 30)
    assert b.text().strip() == "next cell sees: stop True"


def test_two_background_cells_stream_at_once(kernel, emu):
    a = kernel.run("%%llm openai:gpt-4o-mini~long:150 --background -o b1\nFirst", timeout=10)
    b = kernel.run("%%llm gemini:gemini-2.0-flash~long:150 --background -o b2\nSecond", timeout=10)
    assert a.status == b.status == "ok"
    assert "running" in a.text() and "running" in b.text()  # the handle came back at once
    finish = kernel.run(
        "h1, h2 = Out[max(Out) - 1], Out[max(Out)]\n"
        "r1, r2 = await h1, await h2\n"
        "print(r1.finish_reason, r2.finish_reason, h1.done(), h2.result() is r2)",
        timeout=60,
    )
    assert finish.text().split() == ["stop", "stop", "True", "True"], finish.text()
    r1, r2 = emu.records[0], emu.records[1]
    assert r2.opened_at < r1.closed_at and r1.opened_at < r2.closed_at  # they overlapped


def test_bad_input_is_short_and_kernel_stays_usable(kernel):
    cases = {
        "%%llm nosuch:model\nhi": "Unknown",
        "%%llm anthropic:claude-3-5-haiku-latest\nhi": "ANTHROPIC_API_KEY",
        "%%llm openai:gpt-4o-mini -t lots\nhi": "invalid float",
        "%%llm openai:gpt-4o-mini -p broken\nhi": "key=value",
        "%%llm openai:gpt-4o-mini\nUse {undefined_thing}": "undefined_thing",
        "%%llm openai:gpt-4o-mini\n   ": "no prompt",
        "%llm frobnicate": "unknown command",
    }
    for code, needle in cases.items():
        ex = kernel.run(code, timeout=30)
        assert ex.status == "error", code
        text = ex.text()
        assert needle in text, (code, text)
        assert "Traceback" not in text and len(text.splitlines()) <= 3, (code, text)
    assert kernel.run("print(40 + 2)").text().strip() == "42"


def test_template_fills_from_namespace_in_out_and_err(kernel, emu):
    kernel.run("topic = 'tides'")
    kernel.run("1/0")
    ex = kernel.run(
        "%%llm openai:gpt-4o-mini --no-widget\nExplain {topic} and {{literal}} and "
        '{"a": 1} after {Err[max(Err)].split(":")[0]}',
        timeout=60,
    )
    assert ex.status == "ok", ex.text()
    sent = emu.records[-1].body["messages"][-1]["content"]
    assert sent == 'Explain tides and {literal} and {"a": 1} after ZeroDivisionError'


def test_no_widget_streams_plain_text(kernel):
    ex = kernel.run("%%llm openai:gpt-4o-mini --no-widget\nHello", timeout=60)
    expected = expected_answer("openai", "gpt-4o-mini", [{"role": "user", "content": "Hello"}])
    stream = "".join(o["content"]["text"] for o in ex.outputs if o["msg_type"] == "stream")
    assert expected.text in stream
    assert "[done]" in stream and "tokens" in stream
    assert not ex.comm_opens
    messages = [o for o in ex.outputs if o["msg_type"] == "stream"]
    assert len(messages) < len(expected.tokens) / 3  # coalesced, not one per token


def test_chat_mode_sends_history(kernel, emu):
    kernel.run("%llm reset")
    kernel.run("%%llm openai:gpt-4o-mini --chat --no-widget\nFirst question", timeout=60)
    kernel.run("%%llm openai:gpt-4o-mini --chat --no-widget\nshorter", timeout=60)
    msgs = emu.records[-1].body["messages"]
    assert [m["role"] for m in msgs] == ["user", "assistant", "user"]
    assert msgs[0]["content"] == "First question" and msgs[2]["content"] == "shorter"


def test_line_commands(kernel):
    out = kernel.run("%llm providers").text()
    assert "openai" in out and "set" in out and KEY not in out
    out = kernel.run("%llm alias fast openai:gpt-4o-mini\n%llm models openai").text()
    assert "fast" in out
    assert kernel.run("%llm unalias fast").status == "ok"
    out = kernel.run("%llm config").text()
    assert "default_model" in out and KEY not in out
    kernel.run("%config LLMMagics.max_history = 3")
    assert "3" in kernel.run("%llm config").text()
    assert "n3_notebook" in kernel.run("%llm").text()
    assert kernel.run("%llm cancel all").status == "ok"


def test_offline_mode_and_demo_default(kernel, emu):
    kernel.run("%llm offline on")
    try:
        ex = kernel.run("%%llm anthropic:claude-3-5-haiku-latest --no-widget\nHi", timeout=60)
        assert ex.status == "ok", ex.text()
        assert "offline emulator" in ex.text()
        assert not emu.records  # the kernel's own in-process emulator answered
    finally:
        kernel.run("%llm offline off")


def test_start_cancel_cycles_leave_nothing_behind(kernel, emu):
    code = """
import asyncio, random
session = get_ipython().magics_manager.registry["LLMMagics"].session
from n3_notebook.jupyter.llm_cell import run_llm_cell
random.seed(7)
for i in range(100):
    h = await run_llm_cell(session, "openai:gpt-4o-mini~long:400 --background --no-widget", "cycle")
    await asyncio.sleep(random.uniform(0, 0.03))
    h.cancel()
    await h
await asyncio.sleep(0.2)
ours = [t for t in asyncio.all_tasks() if "n3_notebook" in repr(t.get_coro())
        and t is not asyncio.current_task()]
transports = [p.client._transport for p in session.providers.values() if p._client]
in_flight = sum(t.in_flight for t in transports)
print("pending", len(ours), "in_flight", in_flight)
print([repr(t) for t in ours])
"""
    ex = kernel.run(code, timeout=120)
    assert ex.status == "ok", ex.text()[-2000:]
    last = [line for line in ex.text().splitlines() if line.startswith("pending")][-1]
    assert last == "pending 0 in_flight 0", ex.text()[-1500:]
    deadline = time.monotonic() + 3
    while emu.open_connections() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert emu.open_connections() == 0
    assert all(r.closed_at is not None for r in emu.records)
