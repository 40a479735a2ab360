"""The chain engine against the emulator over real sockets: outputs, concurrency,
dependencies, failures, cancellation, timings, usage, cost and provider lifetimes."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest

from n3_notebook.chain import Chain, ChainError, ChainResult
from n3_notebook.chain.engine import stream_chain, stream_chain_batches
from n3_notebook.core import pricing
from n3_notebook.core.errors import AuthenticationError
from n3_notebook.core.types import Usage
from n3_notebook.emulator import expected_answer

from .conftest import FAKE_KEY
from .test_parser import EXAMPLE


def _expected_example(topic: str) -> dict:
    outline = expected_answer(
        "openai",
        "gpt-4o-mini",
        [{"role": "user", "content": f"List three key questions about {topic}."}],
        system="You are concise.",
    )
    answers = expected_answer(
        "anthropic",
        "claude-3-5-haiku-latest",
        [{"role": "user", "content": f"Answer each question briefly: {outline.text}"}],
    )
    summary = expected_answer(
        "gemini",
        "gemini-2.0-flash",
        [{"role": "user", "content": f"Summarize for a newcomer: {answers.text}"}],
    )
    return {"outline": outline, "answers": answers, "summary": summary}


async def _until(cond, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, "condition not reached"
        await asyncio.sleep(0.005)


async def test_run_outputs_match_the_emulator(emu, factory) -> None:
    chain = Chain.parse(EXAMPLE, "research")
    result = await chain.run(provider_factory=factory, topic="perovskites")
    expected = _expected_example("perovskites")
    assert isinstance(result, ChainResult)
    assert result.ok and result.name == "research"
    assert result.inputs == {"topic": "perovskites"}
    assert result.outputs == {name: a.text for name, a in expected.items()}
    assert result["summary"] == expected["summary"].text
    for name, answer in expected.items():
        usage = result.steps[name].response.usage
        assert (usage.input_tokens, usage.output_tokens) == (
            answer.input_tokens,
            answer.output_tokens,
        )
        assert result.steps[name].response.finish_reason == "stop"
    total = Usage.of(
        sum(a.input_tokens for a in expected.values()),
        sum(a.output_tokens for a in expected.values()),
    )
    assert result.usage == total
    # what went over the wire: the system line, the param, one request per step in order
    records = emu.records
    assert [r.provider for r in records] == ["openai", "anthropic", "gemini"]
    assert records[0].body["messages"][0] == {"role": "system", "content": "You are concise."}
    assert records[1].body["temperature"] == 0.2
    assert all(r.completed for r in records)
    assert FAKE_KEY not in repr(records)


async def test_defaults_fill_inputs_and_default_model(emu, factory) -> None:
    chain = Chain.parse("input topic = 'tides'\nstep a: max_tokens=12\n    About {topic}")
    result = await chain.run(provider_factory=factory, default_model="openai:gpt-4o-mini")
    exp = expected_answer(
        "openai", "gpt-4o-mini", [{"role": "user", "content": "About tides"}], max_tokens=12
    )
    assert result.outputs == {"a": exp.text}
    assert result.steps["a"].response.finish_reason == "length"
    assert result.steps["a"].model == "openai:gpt-4o-mini"
    chain.default_model = "gemini:gemini-2.0-flash"
    result = await chain.run(provider_factory=factory)
    assert emu.records[-1].provider == "gemini" and result.ok
    chain.default_model = None
    with pytest.raises(ChainError, match=r"line 2: .*no model"):
        await chain.run(provider_factory=factory)


async def test_independent_steps_overlap_and_dependents_wait(emu, factory) -> None:
    chain = Chain.parse(
        "step a: openai:gpt-4o-mini~long:60\n    first\n"
        "step b: gemini:gemini-2.0-flash~long:60\n    second\n"
        "step c: openai:gpt-4o-mini, max_tokens=12\n    {a} then {b}\n"
    )
    result = await chain.run(provider_factory=factory)
    assert result.ok
    a = next(r for r in emu.records if r.provider == "openai" and r.fault)
    b = next(r for r in emu.records if r.provider == "gemini")
    c = next(r for r in emu.records if r.provider == "openai" and not r.fault)
    assert len(emu.records) == 3
    # a and b were open at the same time
    assert a.opened_at < b.closed_at and b.opened_at < a.closed_at
    overlap = min(a.closed_at, b.closed_at) - max(a.opened_at, b.opened_at)
    assert overlap > 0.5 * min(a.duration, b.duration)
    # c was sent only after both answers were complete
    assert c.opened_at > max(a.first_chunk_at, b.first_chunk_at)
    assert c.opened_at >= max(a.closed_at, b.closed_at) - 0.05
    steps = result.steps
    assert steps["c"].started >= max(steps["a"].finished, steps["b"].finished)
    assert steps["a"].started < steps["b"].finished and steps["b"].started < steps["a"].finished
    assert c.body["messages"][-1]["content"] == f"{result['a']} then {result['b']}"


def _check_event_order(events, chain: Chain) -> dict[str, str]:
    """Valid order per step; returns the text the token events reassemble."""
    assert events[-1].type == "chain_done" and events[-1].step is None
    assert [e.type for e in events].count("chain_done") == 1
    deps = chain.dependencies()
    seen: dict[str, list[str]] = {}
    text: dict[str, str] = {}
    terminal = {"step_done", "step_failed", "step_skipped", "step_cancelled"}
    for i, e in enumerate(events[:-1]):
        kinds = seen.setdefault(e.step, [])
        assert not (terminal & set(kinds)), f"event after the end of {e.step}: {e}"
        if e.type == "token":
            assert kinds and kinds[0] == "step_started"
            text[e.step] = text.get(e.step, "") + e.data["text"]
        elif e.type == "step_started":
            assert not kinds
            for d in deps[e.step]:  # every dependency was done before this step started
                assert "step_done" in seen.get(d, []), (e.step, d, i)
        kinds.append(e.type)
    for name in chain.step_names:
        assert seen[name][-1] in terminal, seen[name]
    return text


async def test_stream_yields_step_tagged_events_in_order(emu, factory) -> None:
    chain = Chain.parse(EXAMPLE, "research")
    events = [e async for e in chain.stream(provider_factory=factory, topic="perovskites")]
    text = _check_event_order(events, chain)
    expected = _expected_example("perovskites")
    assert text == {name: a.text for name, a in expected.items()}
    done = {e.step: e for e in events if e.type == "step_done"}
    assert done["outline"].data["output_tokens"] == expected["outline"].output_tokens
    assert done["outline"].data["finish_reason"] == "stop"
    assert events[-1].data["ok"] is True
    assert events[-1].data["outputs"] == text
    assert events[0].as_dict()["type"] == "step_started"


FAILING = """\
step bad: openai:gpt-4o-mini~invalid_key
    will fail
step child: gemini:gemini-2.0-flash, max_tokens=12
    reads {bad}
step grandchild: openai:gpt-4o-mini, max_tokens=12
    reads {child}
step fine: gemini:gemini-2.0-flash~long:40
    independent
step mid: anthropic:claude-3-5-haiku-latest~midstream_error:2
    breaks after two tokens
step after_mid: openai:gpt-4o-mini, max_tokens=12
    {mid}
step after_fine: openai:gpt-4o-mini, max_tokens=12
    {fine}
"""


async def test_failed_step_skips_only_its_dependents(emu, factory) -> None:
    chain = Chain.parse(FAILING)
    events = [e async for e in chain.stream(provider_factory=factory)]
    _check_event_order(events, chain)
    last = {e.step: e.type for e in events if e.type != "token" and e.step}
    result = await chain.run(provider_factory=factory)
    states = {n: s.state for n, s in result.steps.items()}
    assert states == {
        "bad": "failed",
        "child": "skipped",
        "grandchild": "skipped",
        "fine": "done",
        "mid": "failed",
        "after_mid": "skipped",
        "after_fine": "done",
    }
    assert last == {n: f"step_{s}" for n, s in states.items()}
    assert not result.ok and set(result.outputs) == {"fine", "after_fine"}
    assert "AuthenticationError" in result.steps["bad"].error
    bad = result.steps["bad"].exception
    assert isinstance(bad, AuthenticationError) and bad.status_code == 401
    assert bad.__traceback__ is None  # the result keeps no frames of the run alive
    assert result.steps["child"].exception is None and result.steps["fine"].exception is None
    assert "bad" in result.steps["child"].error and "failed" in result.steps["child"].error
    assert "child" in result.steps["grandchild"].error
    assert result.steps["child"].response is None  # nothing was sent for a skipped step
    mid = result.steps["mid"]
    assert mid.response.finish_reason == "error" and mid.output
    assert len([r for r in emu.records if r.provider == "anthropic"]) == 2  # once per run
    skipped = [e for e in events if e.type == "step_skipped"]
    assert {e.step for e in skipped} == {"child", "grandchild", "after_mid"}
    assert all(e.data["reason"] for e in skipped)
    sent = [r.body.get("messages", r.body.get("contents")) for r in emu.records]
    assert not any("reads" in repr(m) for m in sent)  # no skipped step reached the wire
    assert emu.open_connections() == 0


async def test_prompt_that_fails_to_fill_fails_its_step(emu, factory) -> None:
    chain = Chain.parse(
        "input n = 3\nstep a: openai:gpt-4o-mini, max_tokens=12\n    {n.nope}\n"
        "step b: openai:gpt-4o-mini, max_tokens=12\n    {a}\n"
        "step c: openai:gpt-4o-mini, max_tokens=12\n    {n}"
    )
    result = await chain.run(provider_factory=factory)
    assert result.steps["a"].state == "failed" and "nope" in result.steps["a"].error
    assert result.steps["b"].state == "skipped" and result.steps["c"].state == "done"
    assert len(emu.records) == 1


class _Broken:
    """A provider whose stream raises something that is not an LLMError."""

    name = "broken"
    model = "broken-1"

    def stream_chat(self, messages, system=None, stream_config=None, **params):
        async def gen():
            raise RuntimeError("adapter bug")
            yield  # an async generator, as real providers return

        return gen()


async def test_unexpected_exception_fails_only_that_step(emu, factory) -> None:
    def make(spec: str):
        return _Broken() if spec == "broken:x" else factory(spec)

    chain = Chain.parse(
        "step a: broken:x\n    hi\nstep b: openai:gpt-4o-mini, max_tokens=12\n    {a}\n"
        "step c: openai:gpt-4o-mini, max_tokens=12\n    independent"
    )
    events = [e async for e in chain.stream(provider_factory=make)]
    _check_event_order(events, chain)
    failed = [e for e in events if e.type == "step_failed"]
    assert [e.step for e in failed] == ["a"] and "RuntimeError: adapter bug" in failed[0].data[
        "error"
    ]
    assert events[-1].data["ok"] is False
    result = await chain.run(provider_factory=make)
    assert [s.state for s in result.steps.values()] == ["failed", "skipped", "done"]


async def test_problems_are_reported_before_any_request(emu, factory) -> None:
    cases = {
        "step a: openai:gpt-4o-mini, max_tokens=12\n    x\n"
        "step b: openai:gpt-4o-mini, max_tokens=12\n    {nowhere}": (r"^line 3: .*nowhere"),
        "input x\nstep a: openai:gpt-4o-mini, max_tokens=12\n    {x}": r"^line 1: .*'x'",
        "step a: openai:gpt-4o-mini, max_tokens=12\n    x\n"
        "step b: nosuch:model\n    y": r"^line 3: .*nosuch",
    }
    for text, pattern in cases.items():
        chain = Chain.parse(text)
        with pytest.raises(ChainError, match=pattern):
            await chain.run(provider_factory=factory)
        with pytest.raises(ChainError, match=pattern):
            async for _ in chain.stream(provider_factory=factory):
                pass
    assert emu.records == []
    ok = await Chain.parse(next(iter(cases))).run(
        namespace={"nowhere": 42}, provider_factory=factory
    )
    assert ok.ok and emu.records[-1].body["messages"][-1]["content"] == "42"


async def test_missing_key_is_reported_before_any_request(emu, monkeypatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", emu.base_url("openai"))
    chain = Chain.parse(
        "step a: openai:gpt-4o-mini, max_tokens=12\n    x\n"
        "step b: anthropic:claude-3-5-haiku-latest\n    y"
    )
    with pytest.raises(ChainError, match=r"^line 3: .*ANTHROPIC_API_KEY"):
        await chain.run()
    assert emu.records == []


CANCEL = """\
step a: openai:gpt-4o-mini~long:3000
    one
step b: anthropic:claude-3-5-haiku-latest~long:3000
    two
step c: gemini:gemini-2.0-flash
    after {a}
"""


async def test_cancelling_the_consumer_closes_every_connection(emu, factory) -> None:
    chain = Chain.parse(CANCEL)
    tokens: dict[str, int] = {}
    result = ChainResult(None, {}, {})

    async def consume() -> None:
        async for e in stream_chain(chain, {}, provider_factory=factory, result=result):
            if e.type == "token":
                tokens[e.step] = tokens.get(e.step, 0) + 1

    task = asyncio.create_task(consume())
    await _until(lambda: tokens.get("a", 0) >= 5 and tokens.get("b", 0) >= 5)
    task.cancel()
    cancelled_at = time.monotonic()
    with pytest.raises(asyncio.CancelledError):
        await task
    records = [await emu.wait_for_close(i, timeout=2.0) for i in range(len(emu.records))]
    assert len(records) == 2  # c never started
    for rec in records:
        assert rec.client_disconnected and not rec.completed
        assert rec.closed_at - cancelled_at < 1.0
        assert rec.chunks_sent < 3000
    assert emu.open_connections() == 0
    states = {n: s.state for n, s in result.steps.items()}
    assert states == {"a": "cancelled", "b": "cancelled", "c": "cancelled"}
    assert result.steps["a"].response.finish_reason == "cancelled"
    assert result.steps["a"].output  # what arrived is kept
    assert "cancelled" in result.steps["c"].error
    await asyncio.sleep(0.1)
    assert len(emu.records) == 2  # and nothing new starts afterwards
    pending = [
        t for t in asyncio.all_tasks() if t is not asyncio.current_task() and "chain" in repr(t)
    ]
    assert not pending


async def test_cancelling_run_closes_every_connection(emu, factory) -> None:
    chain = Chain.parse(CANCEL)
    task = asyncio.create_task(chain.run(provider_factory=factory))
    await _until(lambda: len(emu.records) == 2 and all(r.tokens_sent > 3 for r in emu.records))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for i in range(2):
        assert (await emu.wait_for_close(i, timeout=2.0)).client_disconnected
    await asyncio.sleep(0.1)
    assert len(emu.records) == 2 and emu.open_connections() == 0


async def test_leaving_the_stream_early_closes_every_connection(emu, factory) -> None:
    chain = Chain.parse(CANCEL)
    async with contextlib.aclosing(chain.stream(provider_factory=factory)) as events:
        async for e in events:
            if e.type == "token" and e.step == "b":
                break
    for i in range(len(emu.records)):
        assert (await emu.wait_for_close(i, timeout=2.0)).client_disconnected
    assert emu.open_connections() == 0


async def test_cancel_in_the_loop_body_with_aclosing(emu, factory) -> None:
    chain = Chain.parse(CANCEL)
    first = asyncio.Event()

    async def consume() -> None:
        async with contextlib.aclosing(chain.stream(provider_factory=factory)) as events:
            async for e in events:
                if e.type == "token" and e.step == "b":
                    first.set()
                    await asyncio.sleep(10)  # cancelled here, outside the generator

    task = asyncio.create_task(consume())
    await first.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for i in range(len(emu.records)):
        assert (await emu.wait_for_close(i, timeout=2.0)).client_disconnected
    assert emu.open_connections() == 0


async def test_many_independent_steps_all_run_at_once(emu, factory) -> None:
    text = "".join(f"step s{i}: openai:gpt-4o-mini~long:150\n    part {i}\n" for i in range(5))
    result = await Chain.parse(text).run(provider_factory=factory)
    assert result.ok
    records = emu.records
    assert len(records) == 5
    assert max(r.opened_at for r in records) < min(r.closed_at for r in records)


async def test_timings_usage_and_cost(emu, factory) -> None:
    chain = Chain.parse(
        "step a: openai:gpt-4o-mini, max_tokens=12\n    alpha\n"
        "step b: gemini:gemini-2.0-flash, max_tokens=12\n    beta {a}"
    )
    t0 = time.perf_counter()
    result = await chain.run(provider_factory=factory)
    took = time.perf_counter() - t0
    a, b = result.steps["a"], result.steps["b"]
    for s in (a, b):
        assert s.duration is not None and 0 < s.duration <= took
        assert s.response.time_to_first_token is not None
        assert 0 < s.response.time_to_first_token <= s.response.latency
    assert 0 < result.duration <= took + 0.01
    assert a.duration + b.duration <= result.duration + 0.01  # b waited for a
    for s, (provider, model) in (
        (a, ("openai", "gpt-4o-mini")),
        (b, ("gemini", "gemini-2.0-flash")),
    ):
        assert s.cost == pytest.approx(pricing.cost(provider, model, s.response.usage))
        assert s.cost > 0
    assert result.cost == pytest.approx(a.cost + b.cost)
    d = result.as_dict()
    assert d["cost_usd"] == result.cost
    assert d["usage"]["total_tokens"] == result.usage.total_tokens
    assert d["steps"]["a"]["output_tokens"] == a.response.usage.output_tokens
    assert "2 steps" in repr(result) and "done" in repr(result)
    # a user price wins
    pricing.set_price("openai:gpt-4o-mini", 1_000_000, 0)
    result = await chain.run(provider_factory=factory)
    assert result.steps["a"].cost == pytest.approx(result.steps["a"].response.usage.input_tokens)


async def test_unknown_price_is_none(emu, factory) -> None:
    chain = Chain.parse(
        "step a: ollama:llama3, max_tokens=12\n    alpha\n"
        "step b: openai:gpt-4o-mini, max_tokens=12\n    beta"
    )
    result = await chain.run(provider_factory=factory)
    assert result.ok
    assert result.steps["a"].cost is None
    assert result.steps["b"].cost > 0
    assert result.cost is None  # never a guess
    assert result.as_dict()["steps"]["a"]["cost_usd"] is None


async def test_total_cost_ignores_steps_that_did_not_finish(emu, factory) -> None:
    chain = Chain.parse(
        "step a: openai:gpt-4o-mini~midstream_error:2\n    x\n"
        "step b: openai:gpt-4o-mini, max_tokens=12\n    y"
    )
    result = await chain.run(provider_factory=factory)
    assert result.steps["a"].state == "failed"
    assert result.cost == pytest.approx(result.steps["b"].cost)


async def test_providers_the_chain_made_are_closed(emu, monkeypatch) -> None:
    from n3_notebook.chain import engine

    made = []

    def tracking(spec: str):
        p = real(spec)
        made.append(p)
        return p

    real = engine.create_provider
    monkeypatch.setattr(engine, "create_provider", tracking)
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", emu.base_url("openai"))
    monkeypatch.setenv("GEMINI_API_KEY", FAKE_KEY)
    monkeypatch.setenv("GEMINI_BASE_URL", emu.base_url("gemini"))

    def all_closed() -> bool:
        return all(p._client is None for p in made)

    chain = Chain.parse(
        "step a: openai:gpt-4o-mini, max_tokens=12\n    x\n"
        "step b: openai:gpt-4o-mini, max_tokens=12\n    {a}\n"
        "step c: gemini:gemini-2.0-flash, max_tokens=12\n    z"
    )
    result = await chain.run()
    assert result.ok
    assert len(made) == 2 and all_closed()  # one provider per model, both closed

    made.clear()
    failing = Chain.parse("step a: openai:gpt-4o-mini~invalid_key\n    x")
    assert not (await failing.run()).ok
    assert made and all_closed()

    made.clear()
    task = asyncio.create_task(Chain.parse(CANCEL.split("step b")[0]).run())
    await _until(lambda: emu.records and emu.records[-1].tokens_sent > 3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert made and all_closed()


async def test_factory_providers_are_borrowed_not_closed(emu, factory) -> None:
    chain = Chain.parse(
        "step a: openai:gpt-4o-mini, max_tokens=12\n    x\n"
        "step b: openai:gpt-4o-mini, max_tokens=12\n    {a}"
    )
    await chain.run(provider_factory=factory)
    assert factory.calls == 1  # asked once per model string, reused by both steps
    provider = factory.made["openai:gpt-4o-mini"]
    assert provider._client is not None  # still open: the factory's owner closes it
    assert (await chain.run(provider_factory=factory)).ok


async def test_step_named_like_a_builtin_waits_for_it(emu, factory) -> None:
    chain = Chain.parse(
        "step list: openai:gpt-4o-mini~long:30\n    items\n"
        "step b: openai:gpt-4o-mini, max_tokens=12\n"
        "    Use {list}"
    )
    result = await chain.run(provider_factory=factory)
    assert result.ok
    assert emu.records[-1].body["messages"][-1]["content"] == f"Use {result['list']}"


async def test_inputs_as_a_mapping_take_any_name(factory):
    """Input names that clash with run()'s own options come as a mapping."""
    chain = Chain.parse(
        "input namespace\ninput default_model = 'x'\nstep a: openai:gpt-4o-mini\n"
        "    Use {namespace} and {default_model}."
    )
    result = await chain.run({"namespace": "prod"}, provider_factory=factory)
    assert result.ok and result.inputs == {"namespace": "prod", "default_model": "x"}
    simple = Chain.parse("input topic\nstep a: openai:gpt-4o-mini\n    About {topic}.")
    with pytest.raises(ChainError, match="given twice"):
        await simple.run({"topic": "a"}, topic="b", provider_factory=factory)
    with pytest.raises(ChainError, match="given twice"):
        simple.stream({"topic": "a"}, topic="b", provider_factory=factory)


PARALLEL = """\
step a: openai:gpt-4o-mini, max_tokens=8
    one
step b: anthropic:claude-3-5-haiku-latest, max_tokens=8
    two
step c: gemini:gemini-2.0-flash, max_tokens=8
    {a} and {b}
"""


async def test_batches_are_the_stream_grouped_by_readiness(emu, factory) -> None:
    chain = Chain.parse(PARALLEL, "par")
    gen = stream_chain_batches(chain, {}, provider_factory=factory)
    batches = [b async for b in gen]
    events = [e for b in batches for e in b]
    flat = [e async for e in stream_chain(chain, {}, provider_factory=factory)]
    assert _check_event_order(events, chain) == _check_event_order(flat, chain)
    assert sorted((e.type, e.step) for e in events) == sorted((e.type, e.step) for e in flat)
    assert all(batches) and batches[-1] == [events[-1]]
    # the two steps without dependencies start together: one batch, not one each
    assert [(e.type, e.step) for e in batches[0]] == [("step_started", "a"), ("step_started", "b")]
    assert len(batches) < len(events)


async def test_a_slow_consumer_gets_what_piled_up_in_one_batch(emu, factory) -> None:
    chain = Chain.parse(EXAMPLE, "research")
    gen = stream_chain_batches(chain, {"topic": "tides"}, provider_factory=factory)
    sizes = []
    try:
        async for batch in gen:
            sizes.append(len(batch))
            await asyncio.sleep(0.05)  # a relay busy elsewhere: tokens pile up meanwhile
    finally:
        await gen.aclose()
    assert max(sizes) >= 5
