"""A client that goes away cancels its work: every upstream connection of the request
closes (the emulator's records say so). Draining and the per-worker limit."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from n3_notebook.chain import Chain

from .conftest import parse_sse

pytestmark = pytest.mark.timeout(30)

CLOSE_BOUND = 1.0  # seconds from the client leaving to the upstream connection closing

PARALLEL = """\
input topic = "rivers"
step left: openai:gpt-4o-mini~long:4000
    Write at length about {topic}.
step right: openai:gpt-4o-mini~long:4000
    Write at length about the sea and {topic}.
step merge: openai:gpt-4o-mini
    Merge {left} and {right}.
"""


async def _upstream_closed(emu, count: int, left_at: float) -> list:
    deadline = time.monotonic() + 3
    while len(emu.records) < count and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    records = [await emu.wait_for_close(i, timeout=3.0) for i in range(len(emu.records))]
    for rec in records:
        assert rec.client_disconnected, rec
        assert rec.closed_at - left_at < CLOSE_BOUND, rec.closed_at - left_at
        assert rec.tokens_sent < 4000
    return records


async def test_disconnect_mid_stream_closes_every_upstream_connection(serve, emu):
    server = serve([Chain.parse(PARALLEL, "wide")])
    async with httpx.AsyncClient(base_url=server.url) as client:
        seen: set[str] = set()
        async with client.stream("POST", "/chains/wide/stream", json={}) as r:
            assert r.status_code == 200
            async for line in r.aiter_lines():
                if line.startswith("data: ") and '"type":"token"' in line:
                    seen.add("left" if '"step":"left"' in line else "right")
                    if len(seen) == 2:
                        break
        left_at = time.monotonic()
    records = await _upstream_closed(emu, 2, left_at)
    assert len(records) == 2  # merge never started
    await _wait_idle(server)


async def test_disconnect_during_run_cancels_the_chain(serve, emu):
    server = serve([Chain.parse(PARALLEL, "wide")])
    async with httpx.AsyncClient(base_url=server.url, timeout=httpx.Timeout(5, read=0.3)) as c:
        with pytest.raises(httpx.ReadTimeout):
            await c.post("/chains/wide/run", json={})
        left_at = time.monotonic()
    records = await _upstream_closed(emu, 2, left_at)
    assert len(records) == 2
    await _wait_idle(server)


async def test_disconnect_closes_generate_stream_upstream(serve, emu):
    server = serve()
    async with httpx.AsyncClient(base_url=server.url) as client:
        async with client.stream(
            "POST",
            "/v1/generate/stream",
            json={"prompt": "x", "model": "openai:gpt-4o-mini~long:4000"},
        ) as r:
            n = 0
            async for line in r.aiter_lines():
                n += line.startswith("event: token")
                if n == 5:
                    break
        left_at = time.monotonic()
    assert len(await _upstream_closed(emu, 1, left_at)) == 1
    await _wait_idle(server)


async def _wait_idle(server, timeout: float = 2.0) -> None:
    lifecycle = server.app.state.n3.lifecycle
    deadline = time.monotonic() + timeout
    while lifecycle.running and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    assert not lifecycle.running


async def test_drain_lets_short_streams_finish_and_stops_long_ones_cleanly(serve, emu):
    chains = [
        Chain.parse("step a: openai:gpt-4o-mini~long:4000\n    long\n", "long"),
        Chain.parse("step a: openai:gpt-4o-mini~long:300\n    short\n", "short"),
    ]
    server = serve(chains, grace_period=0.6)
    lifecycle = server.app.state.n3.lifecycle
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:

        async def read(name: str) -> list[dict]:
            async with client.stream("POST", f"/chains/{name}/stream", json={}) as r:
                assert r.status_code == 200
                return parse_sse((await r.aread()).decode())

        long_task = asyncio.create_task(read("long"))
        short_task = asyncio.create_task(read("short"))
        while len(emu.records) < 2:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        server.call(lifecycle.begin_drain)
        await asyncio.sleep(0.05)
        health = await client.get("/healthz")
        assert health.status_code == 503 and health.json() == {"status": "draining"}
        refused = await client.post("/chains/short/run", json={})
        assert refused.status_code == 503
        assert refused.json()["error"]["type"] == "shutting_down"
        short, long_ = await short_task, await long_task
    assert short[-1]["event"] == "done" and short[-1]["data"]["ok"] is True
    assert sum(e["event"] == "token" for e in short) == 300
    assert [e["event"] for e in long_[-2:]] == ["error", "done"]
    assert long_[-2]["data"]["error"]["type"] == "shutdown"
    assert long_[-1]["data"] == {"ok": False, "reason": "shutdown"}
    assert [e["id"] for e in long_] == list(range(1, len(long_) + 1))
    # The emulator sees the upstream close asynchronously: wait for it, not just read it.
    records = {r.fault: r for r in [await emu.wait_for_close(i, 3.0) for i in range(2)]}
    assert set(records) == {"long:4000", "long:300"}, records
    assert records["long:300"].completed
    assert records["long:4000"].client_disconnected and records["long:4000"].tokens_sent < 4000


async def test_over_the_worker_limit_is_503_with_retry_after(serve, emu):
    chain = Chain.parse("step a: openai:gpt-4o-mini~long:4000\n    long\n", "long")
    server = serve([chain], max_concurrent_per_worker=1)
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        async with client.stream("POST", "/chains/long/stream", json={}) as r:
            # (kept referenced: a dropped, unfinished iterator closes the connection)
            chunks = r.aiter_raw()
            seen = b""
            while b"event: token" not in seen:
                seen += await anext(chunks)
            busy = await client.post(
                "/v1/generate", json={"prompt": "x", "model": "openai:gpt-4o-mini"}
            )
            assert busy.status_code == 503 and busy.headers["retry-after"] == "1"
            assert busy.json()["error"]["type"] == "overloaded"
        await _wait_idle(server)
        ok = await client.post(
            "/v1/generate", json={"prompt": "x", "model": "openai:gpt-4o-mini", "max_tokens": 2}
        )
        assert ok.status_code == 200
