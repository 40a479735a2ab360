"""Service scale: C concurrent SSE streams through `python -m n3_notebook serve --workers 2`
against the same C streams sent straight at the upstream; and 100 concurrent chain runs
against the same runs one by one with blocking calls.

Processes (2-core machine): the upstream (benchmarks.stream_server: pre-encoded OpenAI
streams, `bench-200-20` = 200 tokens, one every 20 ms), the service (2 uvicorn workers),
and the load generator (raw asyncio sockets, uvloop if installed), each its own process.
The load generator opens C streams at RAMP_RATE new streams a second (C=4,000 ramps in
2 s; each stream lasts at least 4 s, so all C are open at once — `peak_open` checks it),
measures time to the first token from just before connect, and checks every stream ends
properly with all its tokens. The same generator, ramp and model go straight at the
upstream for the baseline; "overhead" is service minus direct at each percentile. At
PACING_AB_LEVELS a second service, identical but with stream pacing off
(N3_SERVE_PACING_INTERVAL=0, see n3_notebook/serve/pacing.py), takes its turn too.

Chains: a two-step chain (the second step reads the first's answer) on the emulator in its
own process (first token after 50 ms, then 2 ms a token, 40 tokens a step). Sequential:
N runs one after another, each step a blocking `provider.generate()`. Concurrent: N
`POST /chains/duo/run` at once to the service. Also N `chain.run()` gathered in one
process, without HTTP.

    python -m benchmarks.service [--quick] [--results-dir DIR]
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ._util import EmulatorProcess, process_cpu_seconds, raise_fd_limit, wait_healthy
from .stream_server import ServerProcess

TITLE = "Service: C concurrent SSE streams via 2 workers vs direct; 100 chain runs vs sequential"
LEVELS = (250, 500, 1000, 2000, 4000)
QUICK_LEVELS = (100,)
PACING_AB_LEVELS = (500, 1000, 2000, 4000)  # also measured with stream pacing off
COLUMNS = [
    "name",
    "completed",
    "failed",
    "ttft_p50",
    "ttft_p99",
    "ttft_max",
    "stream_mean_s",
    "peak_open",
    "wall_s",
    "service_cpu_s",
    "cpu_us_per_token",
    "upstream_cpu_s",
    "loadgen_cpu_s",
    "cores_busy",
    "failures",
]
_DERIVED = {"name", "loadgen_cpu_s", "cores_busy", "failures"}  # not copied from a run
TOKENS, DELAY_MS = 200, 20
RAMP_RATE = 2000.0  # new streams per second
REPEATS = 3  # runs per level and target (direct, service); rows are their medians
STREAM_DEADLINE = 120.0  # a stream not done by then counts as failed
WORKERS = 2
KEY = "sk-bench-service-not-a-real-key"
CHAIN_RUNS = 100
QUICK_CHAIN_RUNS = 20
CHAIN_MODEL = "anthropic:claude-3-5-haiku-latest"
CHAIN_TOKENS = 40
EMU_FIRST, EMU_DELAY = 0.05, 0.002
ROOT = Path(__file__).resolve().parent.parent

CHAIN_FILE = f"""\
chain duo
input topic
step ask: {CHAIN_MODEL}, max_tokens={CHAIN_TOKENS}
    List three questions about {{topic}}.
step answer: {CHAIN_MODEL}, max_tokens={CHAIN_TOKENS}
    Answer briefly: {{ask}}
"""


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    k = min(len(values) - 1, max(0, round(q / 100 * (len(values) - 1))))
    return values[k]


# --------------------------------------------------------------------------- load generator


class _Stream(asyncio.Protocol):
    __slots__ = (
        "done",
        "end_ok",
        "first",
        "gen",
        "ok_marker",
        "seen",
        "t0",
        "tail",
        "tokens",
        "transport",
    )

    def __init__(self, gen: _LoadGen, t0: float) -> None:
        self.gen = gen
        self.t0 = t0
        self.first: float | None = None
        self.tokens = 0
        self.tail = b""
        self.seen = False
        self.end_ok = False
        self.done = gen.loop.create_future()
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        transport.write(self.gen.request)

    def data_received(self, data: bytes) -> None:
        g = self.gen
        joined = self.tail + data
        n = joined.count(g.marker) - self.tail.count(g.marker)
        if n:
            if self.first is None:
                self.first = time.perf_counter() - self.t0
            self.tokens += n
        if not self.seen and g.ok_marker in joined:
            self.seen = True
        self.tail = joined[-64:]
        if self.tail.endswith(b"\r\n0\r\n\r\n"):
            self.end_ok = self.seen and self.tokens == g.tokens
            if not self.done.done():
                self.done.set_result(None)
            self.transport.close()

    def connection_lost(self, exc: BaseException | None) -> None:
        if not self.done.done():
            self.done.set_result(None)


class _LoadGen:
    def __init__(
        self, host: str, port: int, request: bytes, marker: bytes, ok_marker: bytes, tokens: int
    ) -> None:
        self.host, self.port = host, port
        self.request, self.marker, self.ok_marker, self.tokens = request, marker, ok_marker, tokens
        self.loop = asyncio.get_running_loop()
        self.open = 0
        self.peak = 0

    async def one(self) -> tuple[bool, float | None, float, str]:
        t0 = time.perf_counter()
        self.open += 1
        self.peak = max(self.peak, self.open)
        proto: _Stream | None = None
        try:
            _, proto = await self.loop.create_connection(
                lambda: _Stream(self, t0), self.host, self.port
            )
            async with asyncio.timeout(STREAM_DEADLINE):
                await proto.done
            why = "" if proto.end_ok else f"ended early ({proto.tokens} tokens)"
            return proto.end_ok, proto.first, time.perf_counter() - t0, why
        except (OSError, TimeoutError) as exc:
            if proto is not None and proto.transport is not None:
                proto.transport.close()
            return False, None, time.perf_counter() - t0, type(exc).__name__
        finally:
            self.open -= 1


async def _load(spec: dict[str, Any]) -> dict[str, Any]:
    body = json.dumps(spec["body"]).encode()
    extra = "".join(f"{k}: {v}\r\n" for k, v in spec.get("headers", {}).items()).encode()
    request = (
        b"POST %s HTTP/1.1\r\nhost: %s\r\ncontent-type: application/json\r\n"
        b"%scontent-length: %d\r\n\r\n%s"
        % (spec["path"].encode(), spec["host"].encode(), extra, len(body), body)
    )
    gen = _LoadGen(
        spec["host"],
        spec["port"],
        request,
        spec["marker"].encode(),
        spec["ok_marker"].encode(),
        spec["tokens"],
    )
    n, rate = spec["n"], spec["rate"]
    tasks = []
    start = time.perf_counter()
    for i in range(n):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.ensure_future(gen.one()))
    results = await asyncio.gather(*tasks)
    wall = time.perf_counter() - start
    ok = [r for r in results if r[0]]
    ttft = [r[1] for r in results if r[1] is not None]
    reasons: dict[str, int] = {}
    for r in results:
        if not r[0]:
            reasons[r[3]] = reasons.get(r[3], 0) + 1
    return {
        "cpu_s": time.process_time(),
        "completed": len(ok),
        "failed": n - len(ok),
        "failures": reasons,
        "ttft_p50": _pct(ttft, 50),
        "ttft_p99": _pct(ttft, 99),
        "ttft_max": max(ttft) if ttft else None,
        "stream_mean_s": statistics.fmean(r[2] for r in ok) if ok else None,
        "wall_s": wall,
        "peak_open": gen.peak,
    }


def _loadgen_main(arg: str) -> int:
    raise_fd_limit()
    spec = json.loads(arg)
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    print(json.dumps(asyncio.run(_load(spec))), flush=True)
    return 0


def _run_loadgen(spec: dict[str, Any]) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.service", "--loadgen", json.dumps(spec)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=STREAM_DEADLINE + 120,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"load generator failed: {proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _direct_spec(upstream_port: int, n: int) -> dict[str, Any]:
    return {
        "host": "127.0.0.1",
        "port": upstream_port,
        "path": "/v1/chat/completions",
        "body": {
            "model": f"bench-{TOKENS}-{DELAY_MS}",
            "stream": True,
            "messages": [{"role": "user", "content": "benchmark"}],
        },
        "marker": '"content":" token"',
        "ok_marker": "[DONE]",
        "tokens": TOKENS,
        "n": n,
        "rate": RAMP_RATE,
    }


def _service_spec(port: int, n: int) -> dict[str, Any]:
    return {
        "host": "127.0.0.1",
        "port": port,
        "path": "/v1/generate/stream",
        "body": {"prompt": "benchmark", "model": f"openai:bench-{TOKENS}-{DELAY_MS}"},
        "marker": "event: token",
        "ok_marker": '"ok":true',
        "tokens": TOKENS,
        "n": n,
        "rate": RAMP_RATE,
    }


def _overhead_ms(direct: dict[str, Any], served: dict[str, Any], q: str) -> float | None:
    """Time to first token through the service minus straight at the upstream, in ms."""
    a, b = direct[f"ttft_{q}"], served[f"ttft_{q}"]
    return None if a is None or b is None else round(1000 * (b - a), 1)


def _median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One run's figures from several: the median of each number; completed is the worst
    run's (and failed the sum), failure reasons added up."""
    out: dict[str, Any] = dict(runs[-1])
    for key, value in runs[-1].items():
        values = [r.get(key) for r in runs]
        numbers = [v for v in values if isinstance(v, (int, float))]
        if isinstance(value, (int, float)) and len(numbers) == len(values):
            out[key] = statistics.median(numbers)
    out["completed"] = min(r["completed"] for r in runs)
    out["failed"] = sum(r["failed"] for r in runs)
    reasons: dict[str, int] = {}
    for r in runs:
        for k, v in r["failures"].items():
            reasons[k] = reasons.get(k, 0) + v
    out["failures"] = reasons
    return out


def _capacity(rows: list[dict[str, Any]], low: int, top: int) -> dict[str, Any]:
    """What the CPU figures of this run say about the top level: the service's cost per
    relayed token at the lowest level (one token per read, nothing saturated), the cores
    that cost means at the top level, and the cores the harness alone took there."""
    by_name = {r["name"]: r for r in rows}
    us = by_name[f"service @ C={low}"].get("cpu_us_per_token")
    if not us:
        return {}
    tokens_per_s = 1000.0 / DELAY_MS
    return {
        "service_cpu_us_per_token_one_per_read": us,
        "streams_per_core_at_that_cost": round(1e6 / (us * tokens_per_s)),
        f"service_cores_needed_C{top}_at_that_cost": round(top * tokens_per_s * us / 1e6, 1),
        f"harness_cores_C{top}_direct": by_name[f"direct @ C={top}"].get("cores_busy"),
    }


def _cores_busy(r: dict[str, Any]) -> float:
    """Mean cores used by service, upstream and load generator over the run's wall time."""
    cpu = (r.get("service_cpu_s") or 0.0) + r["upstream_cpu_s"] + r["cpu_s"]
    return round(cpu / r["wall_s"], 2)


# --------------------------------------------------------------------------- the service


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Service:
    def __init__(
        self, file: Path, upstream: str, emulator: str, max_concurrent: int, pacing: bool = True
    ) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("N3_")}
        env.update(
            OPENAI_API_KEY=KEY,
            OPENAI_BASE_URL=f"{upstream}/v1",
            ANTHROPIC_API_KEY=KEY,
            ANTHROPIC_BASE_URL=emulator,
        )
        if not pacing:
            env["N3_SERVE_PACING_INTERVAL"] = "0"
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "n3_notebook",
                "serve",
                str(file),
                "--port",
                str(self.port),
                "--workers",
                str(WORKERS),
                "--max-concurrent",
                str(max_concurrent),
                "--no-access-log",
                "--log-level",
                "warning",
            ],
            env=env,
            cwd=ROOT,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )

    def wait_ready(self) -> None:
        wait_healthy(self.proc, f"{self.url}/healthz", "the service", self.output)

    def worker_cpu(self) -> float:
        """CPU seconds used so far by the service's worker processes."""
        pid = self.proc.pid
        try:
            with open(f"/proc/{pid}/task/{pid}/children") as f:
                children = [int(c) for c in f.read().split()]
        except OSError:
            return 0.0
        total = 0.0
        for child in children:
            with contextlib.suppress(OSError):
                total += process_cpu_seconds(child)
        return total

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-3000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(40)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.log.close()


# --------------------------------------------------------------------------- chains


def _topics(n: int) -> list[str]:
    words = ("event loops", "backpressure", "retries", "timeouts", "caches", "kernels")
    return [f"{words[i % len(words)]} #{i}" for i in range(n)]


def _sequential_blocking(emulator_url: str, topics: list[str]) -> float:
    """Each run: step 1, then step 2 with step 1's answer, each a blocking generate()."""
    from n3_notebook import AnthropicProvider

    p = AnthropicProvider(CHAIN_MODEL.split(":", 1)[1], api_key=KEY, base_url=emulator_url)
    t0 = time.perf_counter()
    for topic in topics:
        ask = p.generate(f"List three questions about {topic}.", max_tokens=CHAIN_TOKENS)
        p.generate(f"Answer briefly: {ask.content}", max_tokens=CHAIN_TOKENS)
    return time.perf_counter() - t0


async def _concurrent_service(url: str, topics: list[str]) -> tuple[float, int]:
    import httpx

    limits = httpx.Limits(max_connections=len(topics), max_keepalive_connections=len(topics))
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:
        await client.post("/chains/duo/run", json={"topic": "warm-up"})
        t0 = time.perf_counter()
        rs = await asyncio.gather(
            *(client.post("/chains/duo/run", json={"topic": t}) for t in topics)
        )
        wall = time.perf_counter() - t0
    return wall, sum(
        r.status_code == 200 and r.json()["steps"]["answer"]["state"] == "done" for r in rs
    )


async def _concurrent_in_process(emulator_url: str, topics: list[str]) -> float:
    from n3_notebook import create_provider
    from n3_notebook.serve import parse_chain_file

    chain = parse_chain_file(CHAIN_FILE)["duo"]
    p = create_provider(
        CHAIN_MODEL,
        api_key=KEY,
        base_url=emulator_url,
        max_concurrent=len(topics),
        max_connections=len(topics),
    )
    try:
        await chain.run(provider_factory=lambda spec: p, topic="warm-up")
        t0 = time.perf_counter()
        await asyncio.gather(*(chain.run(provider_factory=lambda spec: p, topic=t) for t in topics))
        return time.perf_counter() - t0
    finally:
        await p.aclose()


# --------------------------------------------------------------------------- run


def run(quick: bool = False) -> dict[str, Any]:
    raise_fd_limit()
    levels = QUICK_LEVELS if quick else LEVELS
    runs = QUICK_CHAIN_RUNS if quick else CHAIN_RUNS
    repeats = 1 if quick else REPEATS
    rows: list[dict[str, Any]] = []
    summary: dict[str, Any] = {}
    upstream_proc = ServerProcess()
    with (
        tempfile.TemporaryDirectory() as tmp,
        upstream_proc as upstream,
        EmulatorProcess(token_delay=EMU_DELAY, first_token_delay=EMU_FIRST) as emu,
    ):
        file = Path(tmp) / "bench.n3"
        file.write_text(CHAIN_FILE, encoding="utf-8")
        upstream_port = int(upstream.rsplit(":", 1)[1])
        limit = max(levels) + 1000
        service = _Service(file, upstream, emu.base_url("anthropic"), limit)
        ab_levels = [n for n in PACING_AB_LEVELS if n in levels]
        services = [service]
        if ab_levels:  # the same service with stream pacing off, at the levels where it acts
            unpaced = _Service(file, upstream, emu.base_url("anthropic"), limit, pacing=False)
            services.append(unpaced)
        try:
            for s in services:
                s.wait_ready()
                _run_loadgen(_service_spec(s.port, 50))  # warm-up: providers, imports
            assert upstream_proc.proc is not None
            up_pid = upstream_proc.proc.pid

            def through(s: _Service, n: int) -> dict[str, Any]:
                cpu0, up0 = s.worker_cpu(), process_cpu_seconds(up_pid)
                served = _run_loadgen(_service_spec(s.port, n))
                cpu = s.worker_cpu() - cpu0
                served["upstream_cpu_s"] = round(process_cpu_seconds(up_pid) - up0, 2)
                served["service_cpu_s"] = round(cpu, 2)
                relayed = served["completed"] * TOKENS
                served["cpu_us_per_token"] = round(1e6 * cpu / relayed, 1) if relayed else None
                return served

            for n in levels:
                directs, serveds, offs = [], [], []
                for _ in range(repeats):  # alternating, so all see the same machine
                    up0 = process_cpu_seconds(up_pid)
                    direct = _run_loadgen(_direct_spec(upstream_port, n))
                    direct["upstream_cpu_s"] = round(process_cpu_seconds(up_pid) - up0, 2)
                    directs.append(direct)
                    serveds.append(through(service, n))
                    if n in ab_levels:
                        offs.append(through(unpaced, n))
                direct, served = _median_run(directs), _median_run(serveds)
                measured = [("direct", direct), ("service", served)]
                if offs:
                    off = _median_run(offs)
                    measured.append(("service, pacing off", off))
                    summary[f"C{n}_pacing_off_overhead_p99_ms"] = _overhead_ms(direct, off, "p99")
                    summary[f"C{n}_pacing_off_cpu_us_per_token"] = off["cpu_us_per_token"]
                for name, r in measured:
                    rows.append(
                        {
                            "name": f"{name} @ C={n}",
                            "streams": n,
                            **{k: r.get(k) for k in COLUMNS if k not in _DERIVED},
                            "loadgen_cpu_s": round(r["cpu_s"], 2),
                            "cores_busy": _cores_busy(r),
                            "failures": ", ".join(f"{k}: {v}" for k, v in r["failures"].items()),
                        }
                    )
                for q in ("p50", "p99"):
                    summary[f"C{n}_overhead_{q}_ms"] = _overhead_ms(direct, served, q)
                summary[f"C{n}_completed_failed"] = f"{served['completed']}/{served['failed']}"
            topics = _topics(runs)
            seq = _sequential_blocking(emu.base_url("anthropic"), topics)
            # medians of 3: one run of 0.4 s is at the mercy of the machine's noise
            service_runs = [asyncio.run(_concurrent_service(service.url, topics)) for _ in range(3)]
            conc = statistics.median(w for w, _ in service_runs)
            ok_runs = min(ok for _, ok in service_runs)
            inproc = statistics.median(
                asyncio.run(_concurrent_in_process(emu.base_url("anthropic"), topics))
                for _ in range(3)
            )
        finally:
            for s in services:
                s.stop()
    rows.append({"name": f"{runs} chain runs, sequential blocking generate()", "wall_s": seq})
    rows.append(
        {
            "name": f"{runs} chain runs, concurrent via the service",
            "wall_s": conc,
            "completed": ok_runs,
            "failed": runs - ok_runs,
        }
    )
    rows.append({"name": f"{runs} chain runs, concurrent chain.run() in process", "wall_s": inproc})
    summary[f"chain_speedup_{runs}_service_vs_sequential"] = round(seq / conc, 1)
    summary[f"chain_speedup_{runs}_in_process_vs_sequential"] = round(seq / inproc, 1)
    top = max(levels)
    p99 = summary.get(f"C{top}_overhead_p99_ms")
    failed = next(r["failed"] for r in rows if r["name"] == f"service @ C={top}")
    summary["target"] = "C=4,000: 0 failed, p99 TTFT overhead < 250 ms"
    summary["target_met"] = bool(top >= 4000 and failed == 0 and p99 is not None and p99 < 250)
    summary.update(_capacity(rows, min(levels), top))
    return {
        "rows": rows,
        "columns": COLUMNS,
        "summary": summary,
        "params": {
            "levels": list(levels),
            "tokens": TOKENS,
            "delay_ms": DELAY_MS,
            "ramp_per_s": RAMP_RATE,
            "workers": WORKERS,
            "repeats_per_level": repeats,
            "chain_runs": runs,
            "chain_tokens_per_step": CHAIN_TOKENS,
            "emulator_pacing_s": [EMU_FIRST, EMU_DELAY],
        },
        "notes": [
            "Times in seconds. TTFT from just before connect to the first token event. "
            "Ideal stream length: 4.0 s (200 tokens x 20 ms). Each row: the median of "
            "each figure over the runs of that level (direct and service alternate); "
            "completed is the worst run's, failed the sum.",
            "Upstream, service (2 uvicorn workers), load generator and (for chains) the "
            "emulator are separate processes on one machine; they share its cores.",
            "The service reuses its upstream connections (keep-alive); the direct load "
            "generator opens a new connection per stream, as a client would.",
            "Sequential chain runs: each step a blocking provider.generate() (a fresh "
            "connection each time, as the sync facade makes one per call).",
            "cores_busy: CPU seconds of service, upstream and load generator over the load "
            "generator's wall time; this machine has 2 cores.",
            "'service, pacing off': the same service with N3_SERVE_PACING_INTERVAL=0 (every "
            "upstream read written at once, even while the worker's loop runs late), run "
            "in turn with the others at the same levels.",
        ],
    }


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "--loadgen":
        sys.exit(_loadgen_main(sys.argv[2]))
    from ._util import main

    sys.exit(main(sys.modules[__name__], name="service"))
