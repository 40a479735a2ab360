"""Pacing under load: streams write every read at once while the loop keeps up, and in
batches (one write per interval, every token still there) while it is late."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from n3_notebook.chain import Chain
from n3_notebook.serve import LoadPacer, create_app
from n3_notebook.serve.jobs import Output

from .conftest import parse_sse


async def _probes(pacer: LoadPacer, n: int) -> None:
    await asyncio.sleep(pacer.probe_every * n + 0.01)


async def test_an_idle_loop_is_not_paced_and_a_late_one_is_until_it_recovers():
    # a generous threshold, so that a loaded test machine does not look like a busy loop
    pacer = LoadPacer(interval=0.1, threshold=0.15, hold=0.4, probe_every=0.01)
    pacer.start()
    try:
        await _probes(pacer, 5)
        assert pacer.delay == 0.0 and pacer.lag < 0.15
        time.sleep(0.3)  # the loop is blocked: the next probe comes late  # noqa: ASYNC251
        await asyncio.sleep(0.002)  # the late probe runs (it is due), not the next
        assert pacer.delay == 0.1 and pacer.lag >= 0.25
        await _probes(pacer, 5)  # on time again, but within `hold`: still paced
        assert pacer.delay == 0.1
        await _probes(pacer, 60)  # on time again for longer than `hold`
        assert pacer.delay == 0.0
    finally:
        pacer.stop()
    assert pacer._handle is None


async def test_interval_zero_never_paces():
    pacer = LoadPacer(interval=0, threshold=1e-9, probe_every=0.01)
    pacer.start()
    time.sleep(0.03)  # noqa: ASYNC251
    await asyncio.sleep(0.05)
    assert pacer.delay == 0.0
    pacer.stop()


def test_bad_settings():
    with pytest.raises(ValueError, match="positive"):
        LoadPacer(threshold=0)
    with pytest.raises(ValueError, match="0 \\(off\\) or more; got -1"):
        LoadPacer(interval=-1)


def test_the_interval_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("N3_SERVE_PACING_INTERVAL", "0.3")
    assert create_app([]).state.n3.lifecycle.pacer.interval == 0.3
    monkeypatch.setenv("N3_SERVE_PACING_INTERVAL", "-2")
    with pytest.raises(ValueError, match=r"N3_SERVE_PACING_INTERVAL: .* got -2"):
        create_app([])
    monkeypatch.setenv("N3_SERVE_PACING_INTERVAL", "soon")
    with pytest.raises(ValueError, match="N3_SERVE_PACING_INTERVAL must be a number"):
        create_app([])


async def test_flush_waits_the_delay_but_the_end_of_the_stream_does_not():
    sent: list[tuple[float, dict]] = []

    async def send(message: dict) -> None:
        sent.append((time.monotonic(), message))

    pacer = LoadPacer()
    pacer.delay = 0.15  # as if the loop were busy
    out = Output(send, send, None, "/x", time.perf_counter(), pacer)
    out.start_sse()
    out.event("step_started", {})
    t0 = time.monotonic()
    await out.flush()
    assert time.monotonic() - t0 < 0.05  # no token yet: nothing is paced before the first
    out.first_token()
    out.event("token", {"text": "a"})
    t0 = time.monotonic()
    await out.flush()
    assert time.monotonic() - t0 >= 0.14  # headers and the token went out, then the wait
    assert [m["type"] for _, m in sent] == ["http.response.start"] + ["http.response.body"] * 2
    assert sent[2][0] - t0 < 0.05  # the token was not held back
    out.event("done", {"ok": True})
    t1 = time.monotonic()
    await out.finish()
    assert time.monotonic() - t1 < 0.05
    assert sent[-1][1] == {"type": "http.response.body", "body": b""}


async def _writes_and_ttft(url: str, path: str, body: dict) -> tuple[int, float, list[dict]]:
    """Body writes the client received (one HTTP chunk each), time to the first token."""
    writes, first, raw = 0, 0.0, b""
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        t0 = time.monotonic()
        async with client.stream("POST", path, json=body) as r:
            assert r.status_code == 200
            async for piece in r.aiter_raw():
                writes += 1
                raw += piece
                if not first and b"event: token" in raw:
                    first = time.monotonic() - t0
    return writes, first, parse_sse(raw.decode())


@pytest.mark.parametrize("route", ["generate", "chain"])
async def test_a_busy_worker_batches_its_writes_and_keeps_every_token(serve, emu, route):
    """With the pacer always busy (any lateness counts), a 40-token stream paced at 25 ms
    a token reaches the client in a handful of writes instead of ~40, with the same first
    token and every token in order."""
    emu.set_pacing(token_delay=0.025, first_token_delay=0.0)
    try:
        model = "openai:gpt-4o-mini"
        chain = Chain.parse(f"step a: {model}, max_tokens=40\n    hi\n", "one")
        if route == "generate":
            path, body = "/v1/generate/stream", {"prompt": "hi", "model": model, "max_tokens": 40}
        else:
            path, body = "/chains/one/stream", {}
        plain = serve([chain], pacer=LoadPacer(interval=0))
        paced = serve([chain], pacer=LoadPacer(interval=0.25, threshold=1e-9, probe_every=0.01))
        await asyncio.sleep(0.05)  # the paced server's first probes have run
        w0, ttft0, events0 = await _writes_and_ttft(plain.url, path, body)
        w1, ttft1, events1 = await _writes_and_ttft(paced.url, path, body)
    finally:
        emu.set_pacing(token_delay=0.001, first_token_delay=0.0)
    tokens = [e["data"]["text"] for e in events0 if e["event"] == "token"]
    assert len(tokens) == 40
    assert [e["data"]["text"] for e in events1 if e["event"] == "token"] == tokens
    assert [e["id"] for e in events1] == list(range(1, len(events1) + 1))
    assert events1[-1]["event"] == "done" and events1[-1]["data"]["ok"] is True
    assert w0 >= 20, w0  # unpaced: about a write per token (fewer on a loaded machine)
    assert w1 <= 10, w1  # paced: one per 250 ms of a 1 s stream, plus the first and the end
    assert ttft1 < ttft0 + 0.1, (ttft0, ttft1)
