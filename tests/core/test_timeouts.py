"""Stream limits against the emulator and a loopback server, with every limit scaled by
SCALE (so "a 90 s answer" runs in 0.9 s against limits a hundred times shorter than the
real defaults): long answers finish with the defaults, a slow first token is waited for
longer when reasoning is requested, silence ends a stream on time with an error that says
which limit fired, and time spent queued for a slot counts toward no limit."""

from __future__ import annotations

import asyncio
import dataclasses
import pickle
import time

import pytest

from n3_notebook import LLMTimeoutError, OpenAIProvider, RequestMetrics, StreamConfig
from n3_notebook.core.timeouts import wants_reasoning
from n3_notebook.core.types import STREAM_ENV
from n3_notebook.emulator import run_emulator

from .loopback import read_request, server

SCALE = 0.01
TOKEN_DELAY = 0.01  # so "long:90" is a 0.9 s answer: 90 s in real time at SCALE


def scaled(cfg: StreamConfig) -> StreamConfig:
    return dataclasses.replace(
        cfg, **{name: getattr(cfg, name) * SCALE for name in STREAM_ENV if getattr(cfg, name)}
    )


DEFAULTS = scaled(StreamConfig())
SEED = scaled(StreamConfig(30.0, 5.0))  # the seed's limits, given positionally as it did


@pytest.fixture(scope="module")
def emu():
    with run_emulator(token_delay=TOKEN_DELAY, first_token_delay=0.0) as e:
        yield e


def provider(emu, fault: str = "", **kw) -> OpenAIProvider:
    model = "gpt-4o-mini" + (f"~{fault}" if fault else "")
    return OpenAIProvider(model, api_key="sk-timeouts", base_url=emu.base_url("openai"), **kw)


async def collect(p: OpenAIProvider, cfg: StreamConfig, **params) -> list[str]:
    async with p:
        return [c.content async for c in p.stream_generate("q", stream_config=cfg, **params)]


async def test_a_90s_answer_completes_with_the_defaults(emu):
    start = time.perf_counter()
    texts = await collect(provider(emu, "long:90"), DEFAULTS)
    assert len([t for t in texts if t]) == 90
    assert time.perf_counter() - start > 0.8  # longer than the seed's whole-stream limit


async def test_the_seed_limits_still_behave_as_the_seed_says(emu):
    got: list[str] = []
    start = time.perf_counter()
    with pytest.raises(LLMTimeoutError) as info:
        async with provider(emu, "long:90") as p:
            async for c in p.stream_generate("q", stream_config=SEED):
                got.append(c.content)
    err = info.value
    assert err.limit == "stream_timeout" and err.limit_seconds == pytest.approx(0.3)
    assert 0.25 <= time.perf_counter() - start < 1.5 and got  # cut at 30 s (scaled)
    with pytest.raises(LLMTimeoutError) as info:  # and 5 s of silence between chunks
        await collect(provider(emu, "stall:0.5@3"), SEED)
    assert info.value.limit == "chunk_timeout"


async def test_a_first_token_after_45s_with_reasoning_requested_completes(emu):
    texts = await collect(provider(emu, "slow_first:0.45"), DEFAULTS, reasoning_effort="high")
    assert "".join(texts)


async def test_a_first_token_after_200s_needs_reasoning_requested(emu):
    start = time.perf_counter()
    with pytest.raises(LLMTimeoutError) as info:
        await collect(provider(emu, "slow_first:2.0"), DEFAULTS)
    waited = time.perf_counter() - start
    err = info.value
    assert err.limit == "first_token_timeout" and 1.1 <= waited < 2.0
    text = str(err)
    assert "no text or thinking within first_token_timeout=1.2s" in text
    assert "bytes without text" in text  # the role chunk came, the text did not
    assert "stream_config=StreamConfig(first_token_timeout=...)" in text
    assert "%config LLMMagics.first_token_timeout" in text and "N3_FIRST_TOKEN_TIMEOUT" in text
    texts = await collect(provider(emu, "slow_first:2.0"), DEFAULTS, reasoning_effort="high")
    assert "".join(texts)


async def test_a_stream_that_goes_silent_ends_on_time_with_the_right_error(emu):
    stamps: list[float] = []
    with pytest.raises(LLMTimeoutError) as info:
        async with provider(emu, "stall:30@3") as p:
            async for c in p.stream_generate("q", stream_config=DEFAULTS):
                if c.content:
                    stamps.append(time.perf_counter())
    gap = time.perf_counter() - stamps[-1]
    err = info.value
    assert len(stamps) == 3 and err.limit == "chunk_timeout"
    assert 1.1 <= gap < 2.5, gap  # 120 s of silence, scaled
    assert "went silent: no bytes for chunk_timeout=1.2s after 3 chunks" in str(err)
    assert "%config LLMMagics.chunk_timeout" in str(err)


def _pinging(pings: int) -> object:
    """An OpenAI stream: one text, then `pings` SSE comments 0.1 s apart (silence when 0:
    as long), then a second text and the end."""

    async def handler(reader, writer):
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n")
        writer.write(b"transfer-encoding: chunked\r\n\r\n")

        def frame(data: bytes) -> bytes:
            return b"%x\r\n%s\r\n" % (len(data), data)

        text = b'data: {"choices":[{"index":0,"delta":{"content":"%s"}}]}\n\n'
        writer.write(frame(text % b"one "))
        await writer.drain()
        for _ in range(6):
            await asyncio.sleep(0.1)
            if pings:
                writer.write(frame(b": ping\n\n"))
                await writer.drain()
        writer.write(frame(text % b"two"))
        end = b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n'
        writer.write(frame(end + b"data: [DONE]\n\n") + b"0\r\n\r\n")
        await writer.drain()
        await reader.read()

    return handler


async def test_pings_count_as_life_and_silence_does_not():
    cfg = StreamConfig(chunk_timeout=0.3)
    async with server(_pinging(6)) as (url, _):
        p = OpenAIProvider("m", api_key="sk-t", base_url=url + "/v1")
        assert "".join(await collect(p, cfg)) == "one two"
    async with server(_pinging(0)) as (url, _):
        p = OpenAIProvider("m", api_key="sk-t", base_url=url + "/v1")
        with pytest.raises(LLMTimeoutError, match="went silent") as info:
            await collect(p, cfg)
    assert info.value.limit == "chunk_timeout"


async def test_waiting_for_a_slot_counts_toward_no_limit(emu):
    """Two 0.3 s streams through one slot, under a 0.5 s whole-stream limit: the second
    waits 0.3 s for the slot, then has its full 0.5 s; metrics report the wait apart."""
    records: list[RequestMetrics] = []
    cfg = StreamConfig(stream_timeout=0.5, chunk_timeout=None)
    async with provider(emu, "long:30", max_concurrent=1, on_metrics=records.append) as p:

        async def one() -> str:
            return "".join([c.content async for c in p.stream_generate("q", stream_config=cfg)])

        texts = await asyncio.gather(one(), one())
    assert all(texts) and len(records) == 2
    queued = max(records, key=lambda r: r.queue_wait)
    assert queued.queue_wait >= 0.2 and queued.outcome == "ok"
    assert queued.time_to_first_token is not None and queued.time_to_first_token < 0.2
    assert queued.duration is not None and queued.duration >= queued.queue_wait + 0.25


def test_reasoning_is_read_from_the_request_or_the_model():
    assert wants_reasoning("gpt-4o-mini", {"reasoning_effort": "high"})
    assert wants_reasoning("claude-sonnet-4", {"thinking": {"type": "enabled"}})
    assert not wants_reasoning("claude-sonnet-4", {"thinking": {"type": "disabled"}})
    assert wants_reasoning(
        "gemini-2.5-pro", {"generationConfig": {"thinkingConfig": {"thinkingBudget": 1024}}}
    )
    assert not wants_reasoning(
        "gemini-2.5-flash", {"generationConfig": {"thinkingConfig": {"thinkingBudget": 0}}}
    )
    assert wants_reasoning("qwen3", {"think": True}) and not wants_reasoning("qwen3", {"think": 0})
    for model in ("o3-mini", "o1", "gpt-5", "deepseek-reasoner", "deepseek-r1:7b", "qwq"):
        assert wants_reasoning(model, {}), model
    for model in ("gpt-4o-mini", "claude-3-5-haiku-latest", "llama3", "command-r-plus"):
        assert not wants_reasoning(model, {"temperature": 0}), model


def test_stream_config_from_env():
    cfg = StreamConfig.from_env({"N3_CHUNK_TIMEOUT": "30", "N3_STREAM_TIMEOUT": "900"})
    assert (cfg.chunk_timeout, cfg.stream_timeout, cfg.first_token_timeout) == (30, 900, 120)
    assert StreamConfig.from_env({"N3_FIRST_TOKEN_TIMEOUT": "0"}).first_token_timeout is None
    assert StreamConfig.from_env({}) == StreamConfig()
    with pytest.raises(ValueError, match="N3_CHUNK_TIMEOUT='soon' is not a number"):
        StreamConfig.from_env({"N3_CHUNK_TIMEOUT": "soon"})


def test_timeout_errors_keep_their_facts_across_processes():
    err = LLMTimeoutError(
        "x", provider="openai", limit="chunk_timeout", limit_seconds=1.5, elapsed=3.0
    )
    back = pickle.loads(pickle.dumps(err))
    assert (back.limit, back.limit_seconds, back.elapsed, back.provider) == (
        "chunk_timeout",
        1.5,
        3.0,
        "openai",
    )
