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
from .service import _median_run, _run_loadgen  # the same load generator as the service bench
from .stream_server import ServerProcess

TITLE = "Gateway: C OpenAI-format streams via n3's gateway and LiteLLM's proxy vs direct"
LEVELS = (50, 250)
#: n3 alone (LiteLLM's proxy is already tens of seconds behind at 250 streams)
N3_ONLY_LEVELS = (500, 1000)
QUICK_LEVELS = (20,)
WORKER_COUNTS = (1,)
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


def _spec(port: int, model: str, n: int, token: str | None = CLIENT_TOKEN) -> dict[str, Any]:
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
        "tokens": TOKENS,
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


def _n3(tmp: Path, upstream: str, workers: int) -> _Target:
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
    )
    argv = [
        sys.executable, "-m", "n3_notebook", "serve", str(tmp / "echo.n3"),
        "--config", str(tmp / "gateway.toml"), "--port", "{port}", "--workers", str(workers),
        "--max-concurrent", "5000", "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip
    return _Target(f"n3 gateway, {workers} worker(s)", argv, env, "/healthz")


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


def _measure(target: _Target, model: str, n: int) -> dict[str, Any]:
    cpu0 = target.cpu()
    r = _run_loadgen(_spec(target.port, model, n))
    cpu = target.cpu() - cpu0
    relayed = r["completed"] * TOKENS
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


def run(quick: bool = False) -> dict[str, Any]:
    raise_fd_limit()
    levels = QUICK_LEVELS if quick else LEVELS
    n3_levels = () if quick else N3_ONLY_LEVELS
    rows: list[dict[str, Any]] = []
    summary: dict[str, Any] = {}
    notes: list[str] = []
    exe, how = (None, "skipped in --quick") if quick else litellm_python()
    if exe is None:
        notes.append(f"LiteLLM: {how}")
    with tempfile.TemporaryDirectory() as tmp_name, ServerProcess() as upstream:
        tmp = Path(tmp_name)
        upstream_port = int(upstream.rsplit(":", 1)[1])
        for workers in WORKER_COUNTS:
            targets: list[tuple[_Target, str]] = [(_n3(tmp, upstream, workers), "bench")]
            if exe is not None:
                targets.append((_litellm(exe, tmp, upstream, workers), "bench"))
            try:
                for t, model in targets:
                    t.wait_ready()
                    _measure(t, model, 10)  # warm-up: imports, providers, connections
                for n in (*levels, *n3_levels):
                    directs = [
                        _run_loadgen(_spec(upstream_port, MODEL, n, None)) for _ in range(REPEATS)
                    ]
                    direct = _median_run(directs)
                    rows.append(_row(f"direct @ C={n}", direct, None))
                    for t, model in targets if n in levels else targets[:1]:
                        r = _median_run([_measure(t, model, n) for _ in range(REPEATS)])
                        row = _row(f"{t.name} @ C={n}", r, direct)
                        rows.append(row)
                        key = "n3" if t.name.startswith("n3") else "litellm"
                        summary[f"{key}_w{workers}_C{n}_overhead_p99_ms"] = row["overhead_p99_ms"]
                        summary[f"{key}_w{workers}_C{n}_cpu_ms_per_1k_tokens"] = row[
                            "cpu_ms_per_1k_tokens"
                        ]
                        summary[f"{key}_w{workers}_C{n}_failed"] = row["failed"]
                    if workers == WORKER_COUNTS[0] and n in levels:
                        n3 = targets[0][0]
                        r = _measure(n3, "fallback", n)
                        row = _row(f"n3 fallback (first upstream refused) @ C={n}", r, direct)
                        rows.append(row)
                        summary[f"n3_fallback_C{n}_overhead_p99_ms"] = row["overhead_p99_ms"]
                        summary[f"n3_fallback_C{n}_failed"] = row["failed"]
            finally:
                for t, _ in targets:
                    t.stop()
    for key in ("n3", "litellm"):
        ok = [
            n
            for n in (*levels, *n3_levels)
            if (summary.get(f"{key}_w1_C{n}_overhead_p99_ms") or 1e9) <= 250
            and summary.get(f"{key}_w1_C{n}_failed") == 0
        ]
        measured = [n for n in (*levels, *n3_levels) if f"{key}_w1_C{n}_failed" in summary]
        if measured:
            summary[f"{key}_w1_largest_C_measured_with_p99_overhead_le_250ms"] = (
                max(ok) if ok else f"below {min(measured)}"
            )
    for n in levels:
        a = summary.get(f"litellm_w1_C{n}_cpu_ms_per_1k_tokens")
        b = summary.get(f"n3_w1_C{n}_cpu_ms_per_1k_tokens")
        if a and b:
            summary[f"C{n}_cpu_ratio_n3_over_litellm"] = round(b / a, 3)
    return {
        "rows": rows,
        "columns": COLUMNS,
        "summary": summary,
        "params": {
            "levels": list(levels),
            "n3_only_levels": list(n3_levels),
            "workers": list(WORKER_COUNTS),
            "tokens": TOKENS,
            "delay_ms": DELAY_MS,
            "ramp_per_s": RAMP_RATE,
            "repeats": REPEATS,
        },
        "notes": [
            *notes,
            "Times in seconds; overheads in ms (gateway minus direct, same percentile). "
            "Ideal stream: 4.0 s (200 tokens x 20 ms). One run per row (a short benchmark "
            "on a busy 2-core machine shared with other work: expect noise).",
            "The fallback row: route ['anthropic:...' at a port nothing listens on, "
            "'openai:...'] - every request refused by the first, served by the second; "
            "after 5 refusals the breaker skips the first.",
        ],
    }


if __name__ == "__main__":
    from ._util import main

    sys.exit(main(sys.modules[__name__], name="gateway"))
