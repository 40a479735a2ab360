"""The seed's claims, measured honestly on our workload, against the emulator in its own
process with realistic pacing (first token after 0.1 s, then one token every 5 ms; answers
of 60-300 tokens as the emulator produces them).

(a) Concurrency: N `agenerate` calls at once (asyncio.gather on one provider) against the
same N prompts sent one after another with the blocking `generate()`. Both with the default
`max_concurrent=10` and with it raised to N. The "ideal" columns are what the server's pacing
alone allows (each answer takes first_token_delay + (tokens - 1) x token_delay): the sum for
sequential calls, a 10-slot FIFO schedule for max_concurrent=10, the longest answer for N
slots. The same comparison with no pacing at all shows what the speedup depends on.

(b) Time to first token: streaming (`stream_generate`, time to the first text chunk) against
waiting for the whole answer (`agenerate`), prompt by prompt on one reused connection; also
the stream's total time, which streaming does not shorten."""

from __future__ import annotations

import asyncio
import heapq
import statistics
import sys
import time
from typing import Any

from ._util import EmulatorProcess

TITLE = "Seed claims: 100 concurrent agenerate vs sequential generate(); TTFT streaming vs waiting"

MODEL = "gpt-4o-mini"
KEY = "sk-bench-seed-FAKE-0123456789"
FIRST_TOKEN_DELAY = 0.1
TOKEN_DELAY = 0.005

CALLS = 100
QUICK_CALLS = 20
CONCURRENT_REPEAT = 3
QUICK_CONCURRENT_REPEAT = 1
TTFT_PROMPTS = 10
QUICK_TTFT_PROMPTS = 5
DEFAULT_LIMIT = 10

NOTES = (
    "What the speedup depends on: the server's pacing (paced vs unpaced rows: with "
    "an instant server there is no waiting to overlap), max_concurrent (the default "
    f"{DEFAULT_LIMIT} caps it near {DEFAULT_LIMIT}x whatever N is; see the ideal_s of "
    "that row, a 10-slot FIFO schedule) and the fixed cost of each blocking call.",
    "Sequential calls use the blocking generate(), which builds a fresh client on a "
    "private loop in a worker thread per call (generate_overhead_ms_per_call = its "
    "wall above the pacing's ideal, per call). It is timed once (N calls of ~0.4-1.6 s "
    "pacing each); the other rows are medians. The unpaced 'await agenerate, "
    "sequential, one client' row separates that per-call cost from concurrency, and "
    "the raw-socket row is the server's own cost per request (the floor).",
    "vs_ideal = wall / ideal: the client's overhead above what the pacing costs.",
    "TTFT rows: median over prompts, each prompt streamed then requested whole on one "
    "reused connection: ratio_wait_vs_stream_ttft is how much sooner text appears when "
    "streaming; ratio_stream_total_vs_wait whether the whole answer arrives any sooner.",
    "All answers are checked against the emulator's expected text.",
)

_TOPICS = (
    "event loops", "connection pools", "server-sent events", "backpressure", "token budgets",
    "retry policies", "cancellation", "HTTP keep-alive", "UTF-8 decoding", "rate limits",
    "jitter", "timeouts", "schedulers", "caches", "widgets", "kernels", "coroutines",
)  # fmt: skip


def prompts(count: int, offset: int = 0) -> list[str]:
    return [
        f"Question {offset + i}: how do {_TOPICS[(offset + i) % len(_TOPICS)]} work in practice?"
        for i in range(count)
    ]


def expected(prompt: str) -> Any:
    from n3_notebook.emulator import expected_answer

    return expected_answer("openai", MODEL, [{"role": "user", "content": prompt}])


def generation_time(tokens: int, first: float, delay: float) -> float:
    """What the emulator's pacing alone costs for a non-streamed answer (models.Pacing)."""
    return first if tokens <= 0 else first + (tokens - 1) * delay


def fifo_makespan(durations: list[float], slots: int) -> float:
    """Wall time of jobs started in order on `slots` workers (a FIFO semaphore)."""
    free = [0.0] * min(slots, len(durations))
    heapq.heapify(free)
    end = 0.0
    for d in durations:
        start = heapq.heappop(free)
        heapq.heappush(free, start + d)
        end = max(end, start + d)
    return end


def _provider(base_url: str, max_concurrent: int = DEFAULT_LIMIT) -> Any:
    from n3_notebook import OpenAIProvider

    return OpenAIProvider(
        model=MODEL, base_url=base_url, api_key=KEY, max_concurrent=max_concurrent, timeout=120
    )


def run_sequential(base_url: str, qs: list[str]) -> tuple[float, list[str]]:
    """Blocking generate() one after another, as a script without asyncio would."""
    p = _provider(base_url)
    t0 = time.perf_counter()
    texts = [p.generate(q).content for q in qs]
    return time.perf_counter() - t0, texts


def run_sequential_async(base_url: str, qs: list[str]) -> tuple[float, list[str]]:
    """await agenerate() one after another on one provider (one client, reused connection)."""

    async def go() -> tuple[float, list[str]]:
        async with _provider(base_url) as p:
            await p.agenerate(qs[0])  # the client and its connection exist before timing
            t0 = time.perf_counter()
            out = [(await p.agenerate(q)).content for q in qs]
            return time.perf_counter() - t0, out

    return asyncio.run(go())


def run_sequential_raw(base_url: str, qs: list[str]) -> tuple[float, list[str]]:
    """The floor: the same requests over one keep-alive raw socket, one write each, with
    TCP_NODELAY, no HTTP library (what the server itself costs per request)."""
    import json
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(base_url)
    path = parts.path.rstrip("/") + "/chat/completions"
    sock = socket.create_connection((parts.hostname, parts.port), timeout=60)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buf = b""

    def request(q: str) -> str:
        nonlocal buf
        payload = json.dumps({"model": MODEL, "messages": [{"role": "user", "content": q}]})
        body = payload.encode()
        sock.sendall(
            (
                f"POST {path} HTTP/1.1\r\nhost: {parts.netloc}\r\n"
                f"authorization: Bearer {KEY}\r\ncontent-type: application/json\r\n"
                f"content-length: {len(body)}\r\n\r\n"
            ).encode()
            + body
        )
        while b"\r\n\r\n" not in buf:
            buf += _recv(sock)
        head, _, buf = buf.partition(b"\r\n\r\n")
        length = None
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if length is None:
            raise RuntimeError("the emulator's answer has no content-length")
        while len(buf) < length:
            buf += _recv(sock)
        data, buf = buf[:length], buf[length:]
        return str(json.loads(data)["choices"][0]["message"]["content"])

    try:
        request(qs[0])  # the connection exists before timing
        t0 = time.perf_counter()
        out = [request(q) for q in qs]
        return time.perf_counter() - t0, out
    finally:
        sock.close()


def _recv(sock: Any) -> bytes:
    data = sock.recv(65536)
    if not data:
        raise RuntimeError("the emulator closed the connection")
    return bytes(data)


def run_concurrent(base_url: str, qs: list[str], limit: int) -> tuple[float, list[str]]:
    """asyncio.gather of agenerate() on one provider (one client), `limit` at a time."""

    async def go() -> tuple[float, list[str]]:
        async with _provider(base_url, max_concurrent=limit) as p:
            t0 = time.perf_counter()
            out = await asyncio.gather(*(p.agenerate(q) for q in qs))
            return time.perf_counter() - t0, [r.content for r in out]

    return asyncio.run(go())


async def _ttft_pairs(base_url: str, qs: list[str]) -> list[dict[str, Any]]:
    async with _provider(base_url) as p:
        warm = [c async for c in p.stream_generate("warm-up")]  # connection, imports
        assert warm
        await p.agenerate("warm-up")
        out = []
        for q in qs:
            t0 = time.perf_counter()
            first: float | None = None
            parts: list[str] = []
            async for chunk in p.stream_generate(q):
                if chunk.content:
                    if first is None:
                        first = time.perf_counter() - t0
                    parts.append(chunk.content)
            stream_total = time.perf_counter() - t0
            t1 = time.perf_counter()
            whole = await p.agenerate(q)
            wait_total = time.perf_counter() - t1
            out.append(
                {
                    "ttft": first,
                    "stream_total": stream_total,
                    "wait_total": wait_total,
                    "same_text": "".join(parts) == whole.content == expected(q).text,
                }
            )
        return out


def _speedup_rows(
    label: str,
    base_url: str,
    qs: list[str],
    repeat: int,
    first: float,
    delay: float,
    floors: bool = False,
) -> tuple[list[dict[str, Any]], dict[str, float], bool]:
    answers = [expected(q) for q in qs]
    want = [a.text for a in answers]
    durations = [generation_time(a.output_tokens, first, delay) for a in answers]
    n = len(qs)
    ideal = {
        "sequential": sum(durations),
        "limit10": fifo_makespan(durations, DEFAULT_LIMIT),
        "limitN": max(durations),
    }
    ok = True
    # warm-up: imports, the first connection, the sync facade's thread
    run_concurrent(base_url, qs[:2], DEFAULT_LIMIT)
    _provider(base_url).generate(qs[0])

    seq_wall, texts = run_sequential(base_url, qs)
    ok = ok and texts == want
    walls: dict[str, list[float]] = {
        "limit10": [],
        "limitN": [],
        "sequential_async": [],
        "sequential_raw": [],
    }
    for _ in range(repeat):
        for key, limit in (("limit10", DEFAULT_LIMIT), ("limitN", n)):
            wall, texts = run_concurrent(base_url, qs, limit)
            ok = ok and texts == want
            walls[key].append(wall)
        if floors:
            for key, fn in (
                ("sequential_async", run_sequential_async),
                ("sequential_raw", run_sequential_raw),
            ):
                wall, texts = fn(base_url, qs)
                ok = ok and texts == want
                walls[key].append(wall)
    med = {"sequential": seq_wall}
    med.update({k: statistics.median(v) for k, v in walls.items() if v})
    ideal["sequential_async"] = ideal["sequential_raw"] = ideal["sequential"]
    names = {
        "sequential": f"{label}: {n} x generate(), sequential",
        "sequential_async": f"{label}: {n} x await agenerate, sequential, one client",
        "sequential_raw": f"{label}: {n} x raw-socket request, sequential, one connection",
        "limit10": f"{label}: gather {n} x agenerate, max_concurrent={DEFAULT_LIMIT}",
        "limitN": f"{label}: gather {n} x agenerate, max_concurrent={n}",
    }
    rows = []
    for key in ("sequential", "sequential_async", "sequential_raw", "limit10", "limitN"):
        if key not in med:
            continue
        rows.append(
            {
                "name": names[key],
                "wall_s": round(med[key], 3),
                "ideal_s": round(ideal[key], 3) if ideal[key] > 0 else None,
                "vs_ideal": round(med[key] / ideal[key], 3) if ideal[key] > 0 else None,
                "speedup_vs_sequential": round(seq_wall / med[key], 2),
                "calls_per_s": round(n / med[key], 1),
                "per_call_ms": round(1e3 * med[key] / n, 2) if key.startswith("seq") else None,
                "runs": 1 if key == "sequential" else repeat,
            }
        )
    return rows, {**med, **{f"ideal_{k}": v for k, v in ideal.items()}}, ok


def run(quick: bool = False) -> dict[str, Any]:
    n = QUICK_CALLS if quick else CALLS
    repeat = QUICK_CONCURRENT_REPEAT if quick else CONCURRENT_REPEAT
    n_ttft = QUICK_TTFT_PROMPTS if quick else TTFT_PROMPTS
    qs = prompts(n)

    with EmulatorProcess(token_delay=TOKEN_DELAY, first_token_delay=FIRST_TOKEN_DELAY) as emu:
        url = emu.base_url("openai")
        paced_rows, paced, paced_ok = _speedup_rows(
            "paced", url, qs, repeat, FIRST_TOKEN_DELAY, TOKEN_DELAY
        )
        pairs = asyncio.run(_ttft_pairs(url, prompts(n_ttft, offset=1000)))
    with EmulatorProcess(token_delay=0.0, first_token_delay=0.0) as emu:
        unpaced_rows, unpaced, unpaced_ok = _speedup_rows(
            "unpaced", emu.base_url("openai"), qs, max(repeat, 3), 0.0, 0.0, floors=True
        )

    ttft = statistics.median(p["ttft"] for p in pairs)
    stream_total = statistics.median(p["stream_total"] for p in pairs)
    wait_total = statistics.median(p["wait_total"] for p in pairs)
    ttft_rows = [
        {
            "name": "stream_generate: first text chunk",
            "wall_s": round(ttft, 4),
            "runs": len(pairs),
        },
        {
            "name": "stream_generate: whole answer",
            "wall_s": round(stream_total, 4),
            "runs": len(pairs),
        },
        {
            "name": "agenerate: whole answer (first text)",
            "wall_s": round(wait_total, 4),
            "runs": len(pairs),
        },
    ]
    tokens = statistics.median(expected(q).output_tokens for q in prompts(n_ttft, offset=1000))
    summary: dict[str, Any] = {
        "speedup_concurrent_limit10_vs_sequential": round(
            paced["sequential"] / paced["limit10"], 2
        ),
        "speedup_concurrent_limitN_vs_sequential": round(paced["sequential"] / paced["limitN"], 2),
        "speedup_unpaced_limit10": round(unpaced["sequential"] / unpaced["limit10"], 2),
        "speedup_unpaced_limitN": round(unpaced["sequential"] / unpaced["limitN"], 2),
        "ideal_speedup_limit10": round(paced["ideal_sequential"] / paced["ideal_limit10"], 2),
        "ideal_speedup_limitN": round(paced["ideal_sequential"] / paced["ideal_limitN"], 2),
        "generate_overhead_ms_per_call": round(
            1e3 * (paced["sequential"] - paced["ideal_sequential"]) / n, 1
        ),
        "unpaced_generate_ms_per_call": round(1e3 * unpaced["sequential"] / n, 2),
        "unpaced_agenerate_ms_per_call_one_client": round(1e3 * unpaced["sequential_async"] / n, 2),
        "unpaced_raw_socket_ms_per_call": round(1e3 * unpaced["sequential_raw"] / n, 2),
        "ttft_stream_s": round(ttft, 4),
        "whole_answer_wait_s": round(wait_total, 4),
        "ratio_wait_vs_stream_ttft": round(wait_total / ttft, 2),
        "ratio_stream_total_vs_wait": round(stream_total / wait_total, 3),
        "answers_identical": paced_ok and unpaced_ok and all(p["same_text"] for p in pairs),
    }
    notes = list(NOTES)
    floor_ms = 1e3 * unpaced["sequential_raw"] / n
    if floor_ms > 10:
        notes.append(
            f"Caution: the emulator itself needs {floor_ms:.1f} ms per request on a reused "
            "connection (raw-socket row), so the unpaced rows and the whole-answer wait "
            "measure the server there, not the client. (A first request on a new connection "
            "does not pay it: a 40 ms floor is the signature of Nagle's algorithm meeting "
            "delayed ACKs, i.e. a server socket without TCP_NODELAY.)"
        )
    return {
        "title": TITLE,
        "params": {
            "calls": n,
            "concurrent_repeat": repeat,
            "sequential_repeat": 1,
            "first_token_delay_s": FIRST_TOKEN_DELAY,
            "token_delay_s": TOKEN_DELAY,
            "ttft_prompts": len(pairs),
            "ttft_median_answer_tokens": tokens,
            "model": f"openai:{MODEL} (emulator, own process)",
        },
        "columns": [
            "name",
            "wall_s",
            "ideal_s",
            "vs_ideal",
            "speedup_vs_sequential",
            "calls_per_s",
            "per_call_ms",
        ],
        "rows": paced_rows + unpaced_rows + ttft_rows,
        "summary": summary,
        "notes": notes,
    }


if __name__ == "__main__":
    from benchmarks._util import main

    sys.exit(main(sys.modules[__name__]))
