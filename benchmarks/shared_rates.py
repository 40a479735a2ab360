"""Waiting rate limits shared through Redis (serve/shared_rates.py): what one acquire costs
with the group in this process and in Redis, and the combined rate of two groups with their
own Redis clients (as two workers have) against one configured budget, beside two groups
that keep their own (what workers without Redis do).

Starts a redis-server of its own on a free loopback port (stopped by its PID); without
redis-server the benchmark is skipped with a note."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import sys
import time
from typing import Any

from n3_notebook.core.limits import BURST_SECONDS, RateGroup
from n3_notebook.serve.shared_budgets import RedisStore
from n3_notebook.serve.shared_rates import RedisRateStore

from ._util import main

TITLE = "Shared rate limits: acquire cost local vs Redis; two groups' combined rate"

ACQUIRES, QUICK_ACQUIRES = 3000, 300
RPM = 6000.0  # 100 a second, a burst of 100
SECONDS, QUICK_SECONDS = 3.0, 1.0
CALLERS = 4  # per group
KEY = ("openai", "http://bench.invalid/v1", "bench")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _start_redis(exe: str) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, f"redis://127.0.0.1:{port}/0"
        except OSError:
            time.sleep(0.05)
    proc.terminate()
    raise RuntimeError("redis-server did not start")


async def _cost(group: RateGroup, n: int, name: str) -> dict[str, Any]:
    await group.acquire()  # the connection is made outside the clock
    c0, t0 = time.process_time(), time.perf_counter()
    for _ in range(n):
        await group.acquire()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {
        "name": name,
        "acquires": n,
        "wall_us_per_acquire": round(wall / n * 1e6, 1),
        "cpu_us_per_acquire": round(cpu / n * 1e6, 1),
    }


async def _combined(groups: list[RateGroup], seconds: float, name: str) -> dict[str, Any]:
    for g in groups:
        g.configure(requests_per_minute=RPM)
    granted: list[float] = []
    t0 = time.monotonic()
    until = t0 + seconds

    async def caller(group: RateGroup) -> None:
        while time.monotonic() < until:
            await group.acquire()
            granted.append(time.monotonic())

    await asyncio.gather(*(caller(g) for g in groups for _ in range(CALLERS)))
    within = sum(1 for t in granted if t <= until)
    allowed = RPM / 60 * (BURST_SECONDS + seconds)
    return {
        "name": name,
        "seconds": seconds,
        "granted": within,
        "allowed": round(allowed),
        "ratio_to_budget": round(within / allowed, 3),
    }


async def _measure(url: str, quick: bool) -> list[dict[str, Any]]:
    n = QUICK_ACQUIRES if quick else ACQUIRES
    seconds = QUICK_SECONDS if quick else SECONDS
    stores = [RedisStore(url), RedisStore(url)]
    try:
        shared = [RateGroup(KEY, store=RedisRateStore(s)) for s in stores]
        rows = [
            await _cost(RateGroup(KEY), n, "acquire, local group"),
            await _cost(
                RateGroup(("openai", "http://c/v1", "c"), store=shared[0].store),
                n,
                "acquire, group in Redis",
            ),
            await _combined(shared, seconds, "two groups sharing Redis"),
            await _combined([RateGroup(KEY), RateGroup(KEY)], seconds, "two groups of their own"),
        ]
    finally:
        for s in stores:
            await s.aclose()
    return rows


def run(quick: bool) -> dict[str, Any]:
    exe = shutil.which("redis-server") or (
        "/usr/bin/redis-server" if shutil.which("/usr/bin/redis-server") else None
    )
    if exe is None:
        return {"rows": [], "summary": {"skipped": "redis-server is not installed"}}
    proc, url = _start_redis(exe)
    try:
        rows = asyncio.run(_measure(url, quick))
    finally:
        proc.terminate()
        proc.wait(10)
    return {
        "rows": rows,
        "columns": [
            "name",
            "acquires",
            "wall_us_per_acquire",
            "cpu_us_per_acquire",
            "seconds",
            "granted",
            "allowed",
            "ratio_to_budget",
        ],
        "params": {"requests_per_minute": RPM, "callers_per_group": CALLERS},
    }


if __name__ == "__main__":
    sys.exit(main(sys.modules[__name__]))
