"""Load and leaks: 1,000 concurrent streams on one loop with nothing lost; 1,000
start-then-cancel cycles at random points leave no task, connection or memory behind."""

from __future__ import annotations

import asyncio
import gc
import os
import random
import subprocess
import sys
import time

import pytest

from n3_notebook import StreamConfig, create_provider
from n3_notebook.emulator import expected_answer

MODEL = "gpt-4o-mini"


@pytest.fixture(scope="module")
def emu_url():
    """The emulator in its own process (so the client loop is measured, not the server)."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "n3_notebook.emulator",
            "--port",
            "0",
            "--token-delay",
            "0.005",
            "--first-token-delay",
            "0",
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("N3_")},
    )
    urls = {}
    for _ in range(5):
        provider, url = proc.stdout.readline().split()
        urls[provider] = url
    yield urls
    proc.terminate()
    proc.wait(10)


def _rss_kib() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


async def test_thousand_concurrent_streams_nothing_lost(emu_url):
    n = 1000
    live = 0
    peak = 0
    p = create_provider(
        f"openai:{MODEL}",
        api_key="k-load-123456",
        base_url=emu_url["openai"],
        max_concurrent=400,
        max_connections=400,
        max_keepalive=400,
        stream_config=StreamConfig(stream_timeout=60, chunk_timeout=10),
    )

    async def one(i: int) -> bool:
        nonlocal live, peak
        prompt = f"question number {i}"
        parts = []
        stream = p.stream_generate(prompt)
        async for chunk in stream:
            if not parts:
                live += 1
                peak = max(peak, live)
            parts.append(chunk.content)
        live -= 1
        exp = expected_answer("openai", MODEL, [{"role": "user", "content": prompt}])
        return "".join(parts) == exp.text

    started = time.monotonic()
    results = await asyncio.gather(*(one(i) for i in range(n)))
    took = time.monotonic() - started
    await p.aclose()
    assert all(results), f"{results.count(False)} streams differ from the emulator's text"
    assert peak <= 400  # max_concurrent held
    assert peak > 100  # and they really ran concurrently
    assert took < 60


async def test_thousand_start_cancel_cycles_leave_nothing(emu_url):
    p = create_provider(
        f"openai:{MODEL}~long:2000",
        api_key="k-load-123456",
        base_url=emu_url["openai"],
        max_concurrent=50,
    )
    rng = random.Random(11)

    async def consume():
        async for _ in p.stream_generate("cycle"):
            pass

    async def cycle_batch(k: int):
        tasks = [asyncio.create_task(consume()) for _ in range(k)]
        await asyncio.sleep(rng.uniform(0, 0.05))
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    for _ in range(10):  # warm-up, then measure memory over the real run
        await cycle_batch(10)
    gc.collect()
    before = _rss_kib()
    for _ in range(100):
        await cycle_batch(10)  # 1,000 cycles, cancelled at random points (0-50 ms)
    await asyncio.sleep(0.3)
    gc.collect()
    grown = _rss_kib() - before
    ours = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    assert ours == []
    transport = p.client._transport
    assert transport.in_flight == 0
    await p.aclose()
    assert grown < 20_000, f"RSS grew by {grown} KiB over 1,000 cycles"
