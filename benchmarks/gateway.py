"""Gateway side by side: C concurrent OpenAI-format streams (`POST /v1/chat/completions`,
`stream: true`) through n3's gateway (`python -m n3_notebook serve FILE --config ...`) and
through LiteLLM's proxy (`litellm --config ...`), against the same streams sent straight at
the upstream; then n3 with a route whose first upstream refuses connections.

Processes (2-core machine, shared): the upstream (benchmarks.stream_server: pre-encoded
OpenAI streams, `bench-200-20` = 200 tokens, one every 20 ms), the gateway under test, and
the load generator (benchmarks.service's raw-socket generator, its own process). Each
stream is checked to end properly with all 200 tokens; time to first token is measured
from just before connect, and "overhead" is gateway minus direct at each percentile.
CPU per 1,000 relayed tokens is the gateway's processes' CPU seconds over the run (every
worker and the supervisor) per 1,000 tokens completed; RSS is the sum over its processes
after the run.

LiteLLM's proxy is installed from PyPI into its own virtual environment (LITELLM_VENV,
default /tmp/litellm-venv), created here on first use; when it cannot be installed its rows
are left out with a note.

    python -m benchmarks.gateway [--quick] [--results-dir DIR]
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]

from ._util import raise_fd_limit, wait_healthy
from .service import (  # the same load generator as the service bench
    STREAM_DEADLINE,
    _median_run,
    _run_loadgen,
)
from .stream_server import ServerProcess

TITLE = "Gateway: C OpenAI-format streams via n3's gateway and LiteLLM's proxy vs direct"
#: Both gateways at every level; the small ones find how many streams each keeps within
#: the first-token budget below.
LEVELS = (10, 25, 50, 250, 500, 1000)
QUICK_LEVELS = (20,)
WORKER_COUNTS = (1, 2)
#: The first-token overhead budget of the "concurrent streams" comparison (p99, ms).
P99_BUDGET_MS = 250.0
#: Streams of the cost split (n3, one worker): what one request costs, what one token costs.
SPLIT_STREAMS = 1000
SPLIT_BULK_TOKENS = 1000
#: The workers' gc.freeze() measured off and on (alternated) at this level.
GC_LEVEL, GC_REPEATS = 1000, 3
TOKENS, DELAY_MS = 200, 20
MODEL = f"bench-{TOKENS}-{DELAY_MS}"
RAMP_RATE = 500.0  # new streams per second
REPEATS = 1
KEY = "sk-bench-gateway-not-a-real-key"
#: Both gateways authenticate their clients (LiteLLM's proxy refuses to start without a key).
CLIENT_TOKEN = "sk-bench-gateway-client-token-0123456789"
LITELLM_VENV = Path(os.environ.get("LITELLM_VENV", "/tmp/litellm-venv"))  # nosec B108  # a benchmark's scratch venv
ROOT = Path(__file__).resolve().parent.parent
COLUMNS = [
    "name",
    "completed",
    "failed",
    "ttft_p50",
    "ttft_p99",
    "overhead_p50_ms",
    "overhead_p99_ms",
    "cpu_ms_per_1k_tokens",
    "rss_mb",
    "wall_s",
    "failures",
]
CHAIN_FILE = "chain echo\ninput text\nstep say: openai:gpt-4o-mini\n    {text}\n"
GATEWAY_TOML = f"""\
[routes]
bench = ["openai:{MODEL}"]
fallback = ["anthropic:{MODEL}", "openai:{MODEL}"]
[breaker]
failures = 5
cooldown = 600
"""
LITELLM_YAML = """\
model_list:
  - model_name: bench
    litellm_params:
      model: openai/{model}
      api_base: {upstream}/v1
      api_key: {key}
"""


def _spec(
    port: int, model: str, n: int, token: str | None = CLIENT_TOKEN, tokens: int = TOKENS
) -> dict[str, Any]:
    return {
        "host": "127.0.0.1",
        "port": port,
        "path": "/v1/chat/completions",
        "headers": {"authorization": f"Bearer {token}"} if token else {},
        "body": {
            "model": model,
            "stream": True,
            "messages": [{"role": "user", "content": "benchmark"}],
        },
        # counted in the bytes: a gateway may put several tokens in one chunk
        "marker": " token",
        "ok_marker": "[DONE]",
        "tokens": tokens,
        "n": n,
        "rate": RAMP_RATE,
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Target:
    """A gateway process tree on a free port: started, health-checked, measured, stopped."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], health: str) -> None:
        self.name = name
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.health = health
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [a.replace("{port}", str(self.port)) for a in argv],
            env=env,
            cwd=ROOT,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = 180.0) -> None:
        url = f"{self.url}{self.health}"
        wait_healthy(self.proc, url, self.name, self.output, timeout, 0.3, http_timeout=2)

    def _procs(self) -> list[psutil.Process]:
        try:
            root = psutil.Process(self.proc.pid)
            return [root, *root.children(recursive=True)]
        except psutil.Error:
            return []

    def cpu(self) -> float:
        total = 0.0
        for p in self._procs():
            with contextlib.suppress(psutil.Error):
                t = p.cpu_times()
                total += t.user + t.system
        return total

    def rss_mb(self) -> float:
        total = 0
        for p in self._procs():
            with contextlib.suppress(psutil.Error):
                total += p.memory_info().rss
        return round(total / 2**20, 1)

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-3000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self.log.close()


def _base_env() -> dict[str, str]:
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("N3_", "OPENAI_", "ANTHROPIC_", "LITELLM_", "PYTHONPATH"))
    }


def _n3(tmp: Path, upstream: str, workers: int, gc_freeze: bool = True) -> _Target:
    (tmp / "echo.n3").write_text(CHAIN_FILE)
    (tmp / "gateway.toml").write_text(GATEWAY_TOML)
    env = _base_env()
    env.update(
        PYTHONPATH=str(ROOT),
        N3_SERVE_TOKEN=CLIENT_TOKEN,
        N3_SERVE_MAX_CONCURRENT_PER_TOKEN="5000",  # one client token carries every stream
        OPENAI_API_KEY=KEY,
        OPENAI_BASE_URL=f"{upstream}/v1",
        ANTHROPIC_API_KEY=KEY,
        # nothing listens there: the fallback route's first upstream is refused
        ANTHROPIC_BASE_URL=f"http://127.0.0.1:{_free_port()}",
        N3_SERVE_GC_FREEZE="1" if gc_freeze else "0",
    )
    argv = [
        sys.executable, "-m", "n3_notebook", "serve", str(tmp / "echo.n3"),
        "--config", str(tmp / "gateway.toml"), "--port", "{port}", "--workers", str(workers),
        "--max-concurrent", "5000", "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip
    name = f"n3 gateway, {workers} worker(s)" + ("" if gc_freeze else " (gc.freeze off)")
    return _Target(name, argv, env, "/healthz")


def litellm_python() -> tuple[Path | None, str]:
    """LiteLLM's proxy in its own venv: (its `litellm` command, a note), created here."""
    exe = LITELLM_VENV / "bin" / "litellm"
    if exe.exists():
        return exe, "installed"
    try:
        if not (LITELLM_VENV / "bin" / "python").exists():
            subprocess.run([sys.executable, "-m", "venv", str(LITELLM_VENV)], check=True)
        subprocess.run(
            [str(LITELLM_VENV / "bin" / "pip"), "install", "-q", "litellm[proxy]"],
            check=True,
            timeout=900,
            capture_output=True,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return None, f"LiteLLM's proxy could not be installed ({type(exc).__name__}); skipped"
    return (exe, "installed") if exe.exists() else (None, "no litellm command after install")


def _litellm(exe: Path, tmp: Path, upstream: str, workers: int) -> _Target:
    (tmp / "litellm.yaml").write_text(LITELLM_YAML.format(model=MODEL, upstream=upstream, key=KEY))
    env = _base_env()
    env.update(
        LITELLM_MASTER_KEY=CLIENT_TOKEN,
        # the upstream repeats one token; LiteLLM stops a stream after 100 identical chunks
        REPEATED_STREAMING_CHUNK_LIMIT=str(TOKENS * 10),
        LITELLM_LOG="ERROR",
        LITELLM_TELEMETRY="False",
        DISABLE_SCHEMA_UPDATE="True",
    )
    argv = [
        str(exe), "--config", str(tmp / "litellm.yaml"), "--host", "127.0.0.1",
        "--port", "{port}", "--num_workers", str(workers),
    ]  # fmt: skip
    return _Target(f"LiteLLM proxy, {workers} worker(s)", argv, env, "/health/liveliness")


def _measure(target: _Target, model: str, n: int, tokens: int = TOKENS) -> dict[str, Any]:
    cpu0 = target.cpu()
    r = _run_loadgen(_spec(target.port, model, n, tokens=tokens))
    cpu = target.cpu() - cpu0
    r["cpu_s"] = cpu
    relayed = r["completed"] * tokens
    r["cpu_ms_per_1k_tokens"] = round(1e6 * cpu / relayed, 1) if relayed else None
    r["rss_mb"] = target.rss_mb()
    return r


def _row(name: str, r: dict[str, Any], direct: dict[str, Any] | None) -> dict[str, Any]:
    row: dict[str, Any] = {"name": name}
    row.update({k: r.get(k) for k in COLUMNS if k in r and k != "failures"})
    for q in ("p50", "p99"):
        a, b = (direct or {}).get(f"ttft_{q}"), r.get(f"ttft_{q}")
        row[f"overhead_{q}_ms"] = None if a is None or b is None else round(1000 * (b - a), 1)
    for k in ("ttft_p50", "ttft_p99", "wall_s"):
        if isinstance(row.get(k), float):
            row[k] = round(row[k], 3)
    row["failures"] = ", ".join(f"{k}: {v}" for k, v in r["failures"].items())
    return row


def _cost_split(n3: _Target) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Where n3's relay CPU goes: SPLIT_STREAMS streams of one token (the cost of a request:
    accept, parse, route, upstream connection, end) and of 1,000 tokens sent at once (the
    cost of a token when reads carry many); the paced benchmark stream adds its reads."""
    rows: list[dict[str, Any]] = []
    costs: dict[str, float] = {}
    for label, tokens in (("request", 1), ("token", SPLIT_BULK_TOKENS)):
        r = _measure(n3, f"openai:bench-{tokens}-0", SPLIT_STREAMS, tokens)
        row = _row(
            f"n3 cost split: {SPLIT_STREAMS:,} streams of {tokens:,} token(s) at once", r, None
        )
        rows.append(row)
        if r["completed"]:
            costs[label] = r["cpu_s"] / r["completed"]
    summary: dict[str, Any] = {}
    if len(costs) == 2:
        per_request = costs["request"]
        per_token = (costs["token"] - per_request) / (SPLIT_BULK_TOKENS - 1)
        summary["n3_cpu_us_per_request"] = round(1e6 * per_request)
        summary["n3_cpu_us_per_token_in_bulk"] = round(1e6 * per_token, 2)
        summary["n3_cpu_us_per_token_of_a_200_token_stream_from_its_request"] = round(
            1e6 * per_request / TOKENS, 2
        )
    return rows, summary


def _gc_freeze_pair(
    tmp: Path, upstream: str, n3: _Target, summary: dict[str, Any]
) -> list[dict[str, Any]]:
    """The workers' gc.freeze() (serve/app.py) off and on, alternated at C=GC_LEVEL."""
    rows: list[dict[str, Any]] = []
    off = _n3(tmp, upstream, 1, gc_freeze=False)
    try:
        off.wait_ready()
        _measure(off, "bench", GC_LEVEL)  # warm its connections as the other's are
        runs: dict[str, list[dict[str, Any]]] = {"on": [], "off": []}
        for _ in range(GC_REPEATS):
            runs["off"].append(_measure(off, "bench", GC_LEVEL))
            runs["on"].append(_measure(n3, "bench", GC_LEVEL))
    finally:
        off.stop()
    for key, target in (("off", off), ("on", n3)):
        r = _median_run(runs[key])
        row = _row(f"{target.name} @ C={GC_LEVEL}, median of {GC_REPEATS}", r, None)
        rows.append(row)
        summary[f"n3_w1_C{GC_LEVEL}_gc_freeze_{key}_cpu_ms_per_1k_tokens"] = row[
            "cpu_ms_per_1k_tokens"
        ]
        summary[f"n3_w1_C{GC_LEVEL}_gc_freeze_{key}_ttft_p99"] = row["ttft_p99"]
    return rows


def _largest_within_budget(summary: dict[str, Any], key: str, levels: tuple[int, ...]) -> Any:
    measured = [n for n in levels if f"{key}_C{n}_failed" in summary]
    ok = [
        n
        for n in measured
        if summary[f"{key}_C{n}_failed"] == 0
        and (summary.get(f"{key}_C{n}_overhead_p99_ms") or 1e9) <= P99_BUDGET_MS
    ]
    if not measured:
        return None
    return max(ok) if ok else f"below {min(measured)}"


def run(quick: bool = False) -> dict[str, Any]:
    raise_fd_limit()
    levels = QUICK_LEVELS if quick else LEVELS
    worker_counts = WORKER_COUNTS[:1] if quick else WORKER_COUNTS
    rows: list[dict[str, Any]] = []
    summary: dict[str, Any] = {}
    notes: list[str] = []
    exe, how = (None, "skipped in --quick") if quick else litellm_python()
    if exe is None:
        notes.append(f"LiteLLM: {how}")
    with tempfile.TemporaryDirectory() as tmp_name, ServerProcess() as upstream:
        tmp = Path(tmp_name)
        upstream_port = int(upstream.rsplit(":", 1)[1])
        for workers in worker_counts:
            targets: list[_Target] = [_n3(tmp, upstream, workers)]
            if exe is not None:
                targets.append(_litellm(exe, tmp, upstream, workers))
            try:
                for t in targets:
                    t.wait_ready()
                    _measure(t, "bench", 10)  # warm-up: imports, providers, connections
                for n in levels:
                    directs = [
                        _run_loadgen(_spec(upstream_port, MODEL, n, None)) for _ in range(REPEATS)
                    ]
                    direct = _median_run(directs)
                    rows.append(_row(f"direct @ C={n} ({workers}-worker round)", direct, None))
                    for t in targets:
                        r = _median_run([_measure(t, "bench", n) for _ in range(REPEATS)])
                        row = _row(f"{t.name} @ C={n}", r, direct)
                        rows.append(row)
                        key = f"{'n3' if t.name.startswith('n3') else 'litellm'}_w{workers}"
                        for k in ("overhead_p99_ms", "cpu_ms_per_1k_tokens", "failed", "rss_mb"):
                            summary[f"{key}_C{n}_{k}"] = row[k]
                    if workers == 1 and n in (50, 250, 1000):
                        r = _measure(targets[0], "fallback", n)
                        row = _row(f"n3 fallback (first upstream refused) @ C={n}", r, direct)
                        rows.append(row)
                        summary[f"n3_fallback_C{n}_overhead_p99_ms"] = row["overhead_p99_ms"]
                        summary[f"n3_fallback_C{n}_failed"] = row["failed"]
                if workers == 1 and not quick:
                    split_rows, split = _cost_split(targets[0])
                    rows += split_rows
                    summary.update(split)
                    rows += _gc_freeze_pair(tmp, upstream, targets[0], summary)
            finally:
                for t in targets:
                    t.stop()
    for workers in worker_counts:
        best = {
            key: _largest_within_budget(summary, f"{key}_w{workers}", levels)
            for key in ("n3", "litellm")
        }
        for key, value in best.items():
            if value is not None:
                summary[f"{key}_w{workers}_largest_C_with_p99_overhead_le_250ms"] = value
        if isinstance(best["n3"], int) and isinstance(best["litellm"], int):
            summary[f"w{workers}_concurrent_streams_ratio_n3_over_litellm"] = round(
                best["n3"] / best["litellm"], 1
            )
        for n in levels:
            a = summary.get(f"litellm_w{workers}_C{n}_cpu_ms_per_1k_tokens")
            b = summary.get(f"n3_w{workers}_C{n}_cpu_ms_per_1k_tokens")
            if a and b:
                summary[f"w{workers}_C{n}_cpu_ratio_n3_over_litellm"] = round(b / a, 3)
    return {
        "rows": rows,
        "columns": COLUMNS,
        "summary": summary,
        "params": {
            "levels": list(levels),
            "workers": list(worker_counts),
            "tokens": TOKENS,
            "delay_ms": DELAY_MS,
            "ramp_per_s": RAMP_RATE,
            "repeats": REPEATS,
            "stream_deadline_s": STREAM_DEADLINE,
        },
        "notes": [
            *notes,
            "Times in seconds; overheads in ms (gateway minus direct, same percentile). "
            "Ideal stream: 4.0 s (200 tokens x 20 ms). One run per row (a short benchmark "
            "on a 2-core machine: the upstream, the gateway and the load generator share "
            "its two cores, so expect noise).",
            f"A stream not done within {STREAM_DEADLINE:.0f} s counts as failed (LiteLLM's "
            "proxy at hundreds of streams).",
            "The fallback rows: route ['anthropic:...' at a port nothing listens on, "
            "'openai:...'] - every request refused by the first, served by the second; "
            "after 5 refusals the breaker skips the first.",
            "The cost split: streams of one token measure what a request costs n3 (accept, "
            "parse, auth, route, upstream connection, finish); streams of 1,000 tokens sent "
            "at once measure what a token costs when each read carries many. A paced "
            "200-token stream pays its request's share per token plus one read and one "
            "write per batch of tokens.",
        ],
    }


if __name__ == "__main__":
    from ._util import main

    sys.exit(main(sys.modules[__name__], name="gateway"))
