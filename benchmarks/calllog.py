"""Call log cost: the same streams with the call log on and off, against the benchmark
server (own process, pre-encoded bytes). Rounds alternate the order of the two modes.

Rows: many short streams at a concurrency (wall and process CPU per stream, which includes
the writer thread's work), one long stream (tokens/s: the per-chunk cost of keeping the
answer's text), the cost of the metrics observer on the request's task (one record()), and
the writer thread's pace (rows/s it builds and commits: redaction, the genai-prices cost of
each distinct usage, SQLite) and its lag after a burst."""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import n3_notebook.log as log
from n3_notebook.core.metrics import RequestMetrics
from n3_notebook.core.types import Message
from n3_notebook.log.writer import WRITER

from . import clients as c
from ._util import raise_fd_limit
from .stream_server import ServerProcess

TITLE = "Call log cost: streams with the log on and off; observer and writer pace"

STREAMS, QUICK_STREAMS = 1000, 200
CONCURRENCY = 100
SHORT_MODEL = "bench-50-0"
LONG_TOKENS, QUICK_LONG_TOKENS = 20_000, 4_000
ROUNDS, QUICK_ROUNDS = 5, 2
RECORDS, QUICK_RECORDS = 20_000, 5_000


async def _many(client: c.OursClient, n: int) -> tuple[float, float]:
    gate = asyncio.Semaphore(CONCURRENCY)
    expected = " token" * 50

    async def one() -> None:
        async with gate:
            assert await client.stream(SHORT_MODEL) == expected

    c0, t0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(one() for _ in range(n)))
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return wall, cpu


async def _long(client: c.OursClient, tokens: int) -> float:
    t0 = time.perf_counter()
    assert await client.stream(f"bench-{tokens}-0") == " token" * tokens
    return tokens / (time.perf_counter() - t0)


async def _run_streams(url: str, quick: bool) -> list[dict[str, Any]]:
    n = QUICK_STREAMS if quick else STREAMS
    tokens = QUICK_LONG_TOKENS if quick else LONG_TOKENS
    rounds = QUICK_ROUNDS if quick else ROUNDS
    client = c.OursClient(url, concurrency=CONCURRENCY)
    samples: dict[str, dict[str, list[float]]] = {
        mode: {"wall": [], "cpu": [], "tps": [], "lag": []} for mode in ("off", "on")
    }
    try:
        await _many(client, CONCURRENCY)  # warm the pool
        for r in range(rounds):
            for mode in ("off", "on") if r % 2 == 0 else ("on", "off"):
                log.configure(enabled=mode == "on")
                wall, cpu = await _many(client, n)
                t0 = time.perf_counter()
                assert log.flush(60)
                samples[mode]["lag"].append(time.perf_counter() - t0)
                samples[mode]["wall"].append(wall)
                samples[mode]["cpu"].append(cpu)
                samples[mode]["tps"].append(await _long(client, tokens))
                assert log.flush(60)
    finally:
        await client.aclose()
    rows = []
    for mode, s in samples.items():
        rows.append(
            {
                "name": f"log {mode}",
                "streams": n,
                "wall_ms_per_stream": statistics.median(s["wall"]) * 1000 / n,
                "best_wall_ms_per_stream": min(s["wall"]) * 1000 / n,
                "cpu_us_per_stream": statistics.median(s["cpu"]) * 1e6 / n,
                "long_stream_tokens_per_s": statistics.median(s["tps"]),
                "writer_lag_ms": statistics.median(s["lag"]) * 1000 if mode == "on" else 0.0,
            }
        )
    return rows


def _record(i: int) -> RequestMetrics:
    rec = RequestMetrics(
        "openai",
        "gpt-4o-mini",
        True,
        time.time(),
        messages=[Message("user", f"Summarise row {i}: " + "lorem ipsum " * 40)],
    )
    rec.answer_parts.extend(["A short answer ", "in a few ", "chunks."] * 20)
    rec.input_tokens, rec.output_tokens = 100 + i % 997, 150 + i % 991  # prices not cached
    rec.duration, rec.time_to_first_token = 1.2, 0.3
    return rec


def _observer_and_writer(quick: bool) -> list[dict[str, Any]]:
    n = QUICK_RECORDS if quick else RECORDS
    log.configure(enabled=True)
    recs = [_record(i) for i in range(n)]
    t0 = time.perf_counter()
    for rec in recs:
        WRITER.record(rec)
    queued = time.perf_counter() - t0
    assert log.flush(120)
    total = time.perf_counter() - t0
    log.configure(enabled=False)
    t1 = time.perf_counter()
    for rec in recs:
        WRITER.record(rec)
    off = time.perf_counter() - t1
    return [
        {"name": "record() on the request's task, log on", "us_per_call": queued * 1e6 / n},
        {"name": "record() with the log off", "us_per_call": off * 1e6 / n},
        {"name": "writer thread: rows built and committed", "rows_per_s": n / total},
    ]


def run(quick: bool) -> dict[str, Any]:
    raise_fd_limit()
    before = log.status()
    with tempfile.TemporaryDirectory(prefix="n3-bench-log-") as tmp:
        log.configure(path=Path(tmp) / "log.db", store_text=True)
        try:
            with ServerProcess() as url:
                stream_rows = asyncio.run(_run_streams(url, quick))
            micro = _observer_and_writer(quick)
        finally:
            log.configure(path=before.path, enabled=before.enabled, store_text=before.store_text)
    off, on = stream_rows
    return {
        "rows": stream_rows + micro,
        "columns": [
            "name",
            "streams",
            "wall_ms_per_stream",
            "best_wall_ms_per_stream",
            "cpu_us_per_stream",
            "long_stream_tokens_per_s",
            "writer_lag_ms",
            "us_per_call",
            "rows_per_s",
        ],
        "params": {
            "streams": off["streams"],
            "concurrency": CONCURRENCY,
            "tokens_per_short_stream": 50,
            "long_stream_tokens": QUICK_LONG_TOKENS if quick else LONG_TOKENS,
            "rounds": QUICK_ROUNDS if quick else ROUNDS,
        },
        "summary": {
            "wall_on_vs_off": on["wall_ms_per_stream"] / off["wall_ms_per_stream"],
            "best_wall_on_vs_off": on["best_wall_ms_per_stream"] / off["best_wall_ms_per_stream"],
            "cpu_on_vs_off": on["cpu_us_per_stream"] / off["cpu_us_per_stream"],
            "long_stream_tps_on_vs_off": on["long_stream_tokens_per_s"]
            / off["long_stream_tokens_per_s"],
            "observer_us_per_call": micro[0]["us_per_call"],
            "writer_rows_per_s": micro[2]["rows_per_s"],
        },
        "notes": [
            "CPU is the whole process's, so the log-on figure includes the writer thread "
            "(row building, redaction, SQLite commits) besides the streams' own work.",
            "Medians of the rounds; best_wall is the fastest round (least disturbed by other "
            "work on a shared machine).",
            "writer_lag_ms: time from the last stream's end until every row was in the file.",
        ],
    }


if __name__ == "__main__":
    from ._util import main

    sys.exit(main(sys.modules[__name__]))
