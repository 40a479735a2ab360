"""Every provider against the emulator over real sockets: the server sees what we do."""

from __future__ import annotations

import asyncio
import time

import pytest

from n3_notebook import (
    APIConnectionError,
    LLMError,
    LLMTimeoutError,
    RetryConfig,
    StreamConfig,
    StreamProtocolError,
    create_provider,
)
from n3_notebook.emulator import expected_answer, run_emulator

MODELS = {
    "openai": "gpt-4o-mini",
    "anthropic": "claude-3-5-haiku-latest",
    "gemini": "gemini-2.0-flash",
    "cohere": "command-r-plus",
    "ollama": "llama3",
}
PROVIDERS = sorted(MODELS)


@pytest.fixture(scope="module")
def emu():
    with run_emulator(token_delay=0.002, first_token_delay=0.0) as e:
        yield e


@pytest.fixture(autouse=True)
def _reset(emu):
    emu.reset()


def provider(emu, name, suffix="", **kw):
    kw.setdefault("retry", RetryConfig(max_attempts=3, base_delay=0.01, max_delay=0.2))
    return create_provider(
        f"{name}:{MODELS[name]}{suffix}",
        api_key="k-live-test-123456",
        base_url=emu.base_url(name),
        **kw,
    )


@pytest.mark.parametrize("name", PROVIDERS)
async def test_stream_matches_server_text(emu, name):
    async with provider(emu, name) as p:
        chunks = [c async for c in p.stream_generate("Why is the sky blue?")]
    exp = expected_answer(name, MODELS[name], [{"role": "user", "content": "Why is the sky blue?"}])
    assert "".join(c.content for c in chunks) == exp.text
    assert chunks[-1].usage.output_tokens == exp.output_tokens
    assert chunks[-1].finish_reason == "stop"


@pytest.mark.parametrize("name", PROVIDERS)
async def test_cancelling_consumer_closes_connection_at_once(emu, name):
    async with provider(emu, name, "~long:3000") as p:
        got = 0
        five = asyncio.Event()

        async def consume():
            nonlocal got
            async for c in p.stream_generate("story"):
                got += bool(c.content)
                if got == 5:
                    five.set()

        task = asyncio.create_task(consume())
        await five.wait()
        task.cancel()
        cancelled_at = time.monotonic()
        with pytest.raises(asyncio.CancelledError):
            await task
        rec = await emu.wait_for_close(-1, timeout=2.0)
    assert rec.client_disconnected
    assert rec.closed_at - cancelled_at < 0.2
    assert rec.chunks_sent < 3000


@pytest.mark.parametrize("name", PROVIDERS)
async def test_leaving_loop_early_closes_connection(emu, name):
    async with provider(emu, name, "~long:3000") as p:
        stream = p.stream_generate("story")
        async for c in stream:
            if c.content:
                break
        left_at = time.monotonic()
        await stream.aclose()
        rec = await emu.wait_for_close(-1, timeout=2.0)
    assert rec.client_disconnected and rec.closed_at - left_at < 0.2


@pytest.mark.parametrize("name", PROVIDERS)
async def test_chunk_timeout_on_stall_then_provider_still_works(emu, name):
    async with provider(emu, name, "~stall:3") as p:
        with pytest.raises(LLMTimeoutError, match="chunk_timeout"):
            async for _ in p.stream_generate("x", stream_config=StreamConfig(chunk_timeout=0.2)):
                pass
        rec = await emu.wait_for_close(-1, timeout=2.0)
        assert rec.client_disconnected
    async with provider(emu, name) as p2:
        assert (await p2.agenerate("again")).finish_reason == "stop"


@pytest.mark.parametrize("name", PROVIDERS)
async def test_rate_limit_retried_with_retry_after(emu, name):
    async with provider(emu, name, "~rate_limit:2") as p:
        r = await p.agenerate("x")
    assert r.retries == 2 and r.finish_reason == "stop"
    assert [rec.status for rec in emu.records] == [429, 429, 200]


@pytest.mark.parametrize("name", PROVIDERS)
async def test_midstream_error_keeps_text(emu, name):
    async with provider(emu, name, "~midstream_error:4") as p:
        got = []
        with pytest.raises(LLMError):
            async for c in p.stream_generate("x"):
                got.append(c.content)
    assert len([g for g in got if g]) == 4
    assert len(emu.records) == 1


@pytest.mark.parametrize("name", PROVIDERS)
async def test_disconnect_mid_stream_is_connection_error(emu, name):
    async with provider(emu, name, "~disconnect:3") as p:
        with pytest.raises((APIConnectionError, StreamProtocolError)):
            async for _ in p.stream_generate("x"):
                pass


@pytest.mark.parametrize("name", PROVIDERS)
async def test_malformed_line_is_protocol_error(emu, name):
    async with provider(emu, name, "~malformed:2") as p:
        with pytest.raises(StreamProtocolError, match="malformed"):
            async for _ in p.stream_generate("x"):
                pass


async def test_agenerate_is_really_async(emu):
    async with provider(emu, "openai", "~slow_first:0.3") as p:
        t = time.perf_counter()
        rs = await asyncio.gather(*(p.agenerate(f"q{i}") for i in range(6)))
        took = time.perf_counter() - t
    assert all(r.finish_reason == "stop" for r in rs)
    assert took < 6 * 0.3  # overlapped, not one after another


@pytest.mark.parametrize("name", PROVIDERS)
async def test_streams_reuse_their_connection(emu, name):
    """After the protocol's last event the body is drained, so the next request reuses the
    connection instead of paying a new TCP (and, for real APIs, TLS) handshake."""
    async with provider(emu, name) as p:
        for _ in range(3):
            async for _ in p.stream_generate("again"):
                pass
        transport = p.client._transport
        assert transport.in_flight == 0
        assert transport.idle_connections == 1
