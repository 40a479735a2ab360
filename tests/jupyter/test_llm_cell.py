"""run_llm_cell with a session: streaming, -o, --background, --chat, errors, Cancel and
interrupt, without a kernel."""

from __future__ import annotations

import asyncio

import pytest

from n3_notebook.core.types import LLMResponse
from n3_notebook.emulator import expected_answer
from n3_notebook.jupyter.errors import CellError
from n3_notebook.jupyter.handle import LLMHandle
from n3_notebook.jupyter.llm_cell import run_llm_cell

from .conftest import KEY, until


def answer(prompt: str, model: str = "gpt-4o-mini") -> str:
    return expected_answer("openai", model, [{"role": "user", "content": prompt}]).text


async def test_streams_the_answer_and_keeps_it(session, emu, capsys):
    assert await run_llm_cell(session, "openai:gpt-4o-mini -o r", "Explain {topic}") is None
    r = session.namespace["r"]
    assert isinstance(r, LLMResponse) and session.last is r
    assert r.content == answer("Explain tides") and r.finish_reason == "stop"
    out = capsys.readouterr().out
    assert "── openai:gpt-4o-mini ──" in out and r.content in out and "[done]" in out
    assert emu.records[-1].body["messages"] == [{"role": "user", "content": "Explain tides"}]
    assert KEY not in out


async def test_default_model_system_and_params(session, emu):
    await run_llm_cell(session, "-s 'Be brief.' -t 0.5 -n 40 -p top_p=0.9 -p seed=7", "Hi")
    body = emu.records[-1].body
    assert body["model"] == "gpt-4o-mini"
    assert body["messages"][0] == {"role": "system", "content": "Be brief."}
    assert body["temperature"] == 0.5 and body["top_p"] == 0.9 and body["seed"] == 7
    assert 40 in (body.get("max_tokens"), body.get("max_completion_tokens"))


async def test_background_returns_a_tracked_handle(session):
    h = await run_llm_cell(session, "openai:gpt-4o-mini~long:200 --background -o bg", "Go")
    assert isinstance(h, LLMHandle) and session.handles == [h] and not h.done()
    r = await h
    assert r.finish_reason == "stop" and session.namespace["bg"] is r and h.result() is r


async def test_chat_sends_the_history_and_reset_forgets_it(session, emu):
    await run_llm_cell(session, "openai:gpt-4o-mini --chat", "First question")
    await run_llm_cell(session, "openai:gpt-4o-mini --chat", "And then?")
    roles = [m["role"] for m in emu.records[-1].body["messages"]]
    assert roles == ["user", "assistant", "user"]
    session.settings.max_history = 1
    await run_llm_cell(session, "openai:gpt-4o-mini --chat", "Third")
    assert len(emu.records[-1].body["messages"]) == 3  # one exchange kept
    assert len(session.history) == 1


async def test_cancel_keeps_what_arrived(session, emu):
    h = await run_llm_cell(session, "openai:gpt-4o-mini~long:5000 --background -o c", "Long")
    await until(lambda: emu.records and emu.records[-1].chunks_sent > 5)
    assert session.cancel() == 1
    r = await h
    assert r.finish_reason == "cancelled" and r.content and session.namespace["c"] is r
    rec = await emu.wait_for_close(-1, timeout=2.0)
    assert rec.client_disconnected


async def test_interrupt_ends_the_cell_with_a_short_error(session, emu):
    cell = asyncio.ensure_future(run_llm_cell(session, "openai:gpt-4o-mini~long:5000", "Long"))
    await until(lambda: emu.records and emu.records[-1].chunks_sent > 5)
    cell.cancel()  # what the kernel does to the cell's task on an interrupt
    with pytest.raises(CellError, match="interrupted") as info:
        await cell
    assert info.value.kind == "KeyboardInterrupt"
    assert session.last.finish_reason == "cancelled"
    assert (await emu.wait_for_close(-1, timeout=2.0)).client_disconnected


@pytest.mark.parametrize(
    ("line", "body", "kind", "needle"),
    [
        ("nosuch:model", "hi", "UnknownModelError", "nosuch"),
        ("anthropic:claude-3-5-haiku-latest", "hi", "MissingAPIKeyError", "ANTHROPIC_API_KEY"),
        ("openai:gpt-4o-mini", "Use {undefined_thing}", "Undefined prompt variable", "undefined"),
        ("openai:gpt-4o-mini", "  \n ", "Empty %%llm cell", "no prompt"),
        ("openai:gpt-4o-mini -t 5", "hi", "Malformed %%llm line", "between 0 and 2"),
    ],
)
async def test_bad_input_is_a_short_cell_error(session, emu, line, body, kind, needle):
    with pytest.raises(CellError) as info:
        await run_llm_cell(session, line, body)
    assert info.value.kind == kind and needle in str(info.value)
    assert not emu.records  # nothing was sent


async def test_a_provider_error_says_what_was_kept(session):
    with pytest.raises(CellError, match="kept in the output above") as info:
        await run_llm_cell(session, "openai:gpt-4o-mini~midstream_error:3 -o e", "Hi")
    assert info.value.kind == "ServerError"  # the in-band error of the OpenAI stream
    assert session.namespace["e"].finish_reason == "error"
    assert session.namespace["e"].content  # the three chunks that arrived


async def test_widgets_publish_the_answer_in_the_chosen_format(session, shown):
    session.widgets = True
    await run_llm_cell(session, "openai:gpt-4o-mini -f code", "Show code")
    boxes = [o for o in shown if "n3_notebook stream" in repr(o)]
    assert len(boxes) == 1  # the live widget, shown at once
    published = shown.markdown()
    assert len(published) == 1 and published[0].startswith("```")
