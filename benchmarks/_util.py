"""Shared helpers for benchmarks: timing (median of N runs, wall and CPU), machine info,
and the results writer (merge into latest.json keyed by benchmark name, render latest.md).

A benchmark module defines:

    TITLE = "one line"
    def run(quick: bool) -> dict: ...

and returns a dict with at least "rows" (a list of flat dicts, one per measured variant;
every row has a "name" key). Optional keys: "columns" (the row keys to show in the
Markdown table, in order), "summary" (flat dict of headline numbers), "params" (what was
measured: sizes, repeats) and "notes" (list of strings). Everything must be JSON-safe."""

from __future__ import annotations

import contextlib
import datetime as _dt
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx

DEFAULT_RESULTS_DIR = Path(__file__).resolve().parent / "results"
JSON_NAME = "latest.json"
MD_NAME = "latest.md"

#: Packages whose versions are recorded with every result.
TRACKED_PACKAGES = ("n3_notebook", "httpx", "httpx-sse", "openai", "anthropic", "uvicorn")


@dataclass(frozen=True, slots=True)
class Timing:
    """Median (and spread) of repeated runs of one callable, in seconds."""

    runs: int
    wall_median: float
    wall_min: float
    wall_max: float
    cpu_median: float

    def rate(self, count: int) -> float:
        """Items per second of wall time at the median run."""
        return count / self.wall_median if self.wall_median > 0 else float("inf")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def measure(fn: Callable[[], Any], repeat: int = 7, warmup: int = 1) -> Timing:
    """Run fn `warmup` times untimed, then `repeat` times; median wall and CPU time.

    The garbage collector is collected before and disabled during each timed run, so one
    run's garbage does not bill the next one (as timeit does)."""
    if repeat < 1:
        raise ValueError("repeat must be at least 1")
    for _ in range(warmup):
        fn()
    walls: list[float] = []
    cpus: list[float] = []
    enabled = gc.isenabled()
    try:
        for _ in range(repeat):
            gc.collect()
            gc.disable()
            c0 = time.process_time()
            t0 = time.perf_counter()
            fn()
            t1 = time.perf_counter()
            c1 = time.process_time()
            if enabled:
                gc.enable()
            walls.append(t1 - t0)
            cpus.append(c1 - c0)
    finally:
        if enabled:
            gc.enable()
    return Timing(
        runs=repeat,
        wall_median=statistics.median(walls),
        wall_min=min(walls),
        wall_max=max(walls),
        cpu_median=statistics.median(cpus),
    )


def package_versions(names: Iterable[str] = TRACKED_PACKAGES) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def machine_info() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or None,
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "cpu_count": os.cpu_count(),
        "packages": package_versions(),
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }


def write_results(
    results: dict[str, dict[str, Any]],
    results_dir: Path | str = DEFAULT_RESULTS_DIR,
    quick: bool = False,
) -> tuple[Path, Path]:
    """Merge `results` (benchmark name -> result dict) into latest.json, re-render latest.md.

    Each entry gets the machine info and the quick flag of the run that produced it, so
    entries from different runs stay self-describing after a merge."""
    directory = Path(results_dir)
    directory.mkdir(parents=True, exist_ok=True)
    json_path = directory / JSON_NAME
    md_path = directory / MD_NAME
    merged: dict[str, Any] = {}
    if json_path.exists():
        try:
            loaded = json.loads(json_path.read_text(encoding="utf-8"))
            if isinstance(loaded, dict):
                merged = loaded
        except (OSError, ValueError):
            merged = {}
    benchmarks = merged.get("benchmarks")
    if not isinstance(benchmarks, dict):
        benchmarks = {}
    machine = machine_info()
    for name, result in results.items():
        benchmarks[name] = {**result, "quick": quick, "machine": machine}
    merged = {"benchmarks": dict(sorted(benchmarks.items())), "updated": machine["date"]}
    tmp = json_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(merged, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    tmp.replace(json_path)
    md_path.write_text(render_markdown(merged), encoding="utf-8")
    return json_path, md_path


def render_markdown(merged: dict[str, Any]) -> str:
    lines = ["# Benchmark results", "", f"Updated {merged.get('updated', '?')}.", ""]
    for name, result in merged.get("benchmarks", {}).items():
        lines += [f"## {name}: {result.get('title', '')}".rstrip(": "), ""]
        m = result.get("machine", {})
        pk = ", ".join(f"{k} {v}" for k, v in m.get("packages", {}).items() if v)
        lines.append(
            f"{m.get('date', '?')} · Python {m.get('python', '?')} · {m.get('platform', '?')} · "
            f"{m.get('cpu_count', '?')} CPUs{' · quick run' if result.get('quick') else ''}"
        )
        if pk:
            lines.append(f"Packages: {pk}")
        lines.append("")
        rows = result.get("rows", [])
        if rows:
            columns = result.get("columns") or list(rows[0])
            lines.append("| " + " | ".join(columns) + " |")
            lines.append("|" + "|".join("---" if c == "name" else "---:" for c in columns) + "|")
            for row in rows:
                lines.append("| " + " | ".join(_cell(row.get(c)) for c in columns) + " |")
            lines.append("")
        summary = result.get("summary") or {}
        for key, value in summary.items():
            lines.append(f"- **{key}**: {_cell(value)}")
        for note in result.get("notes", []):
            lines.append(f"- {note}")
        if summary or result.get("notes"):
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _cell(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if value >= 1000:
            return f"{value:,.0f}"
        if value >= 10:
            return f"{value:.1f}"
        return f"{value:.3g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value).replace("|", "\\|")


def raise_fd_limit() -> int:
    """Raise this process's open-file limit to its hard limit (thousands of sockets)."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


# --- running one benchmark module on its own, and the emulator in its own process --------


def main(module: Any, argv: list[str] | None = None, name: str | None = None) -> int:
    """`python -m benchmarks.<name> [--quick] [--results-dir DIR]`: run one module.

    Call it from the module as `sys.exit(main(sys.modules[__name__]))`. The result is
    merged into latest.json under the module's short name, as `python -m benchmarks` does."""
    import argparse

    spec_name = getattr(getattr(module, "__spec__", None), "name", None) or module.__name__
    name = name or spec_name.rpartition(".")[2]
    parser = argparse.ArgumentParser(
        prog=f"python -m benchmarks.{name}", description=(module.__doc__ or "").split("\n\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="short smoke run (for CI)")
    parser.add_argument(
        "--results-dir",
        default=str(DEFAULT_RESULTS_DIR),
        help="where latest.json and latest.md are written (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    print(f"==> {name}: {module.TITLE}{' (quick)' if args.quick else ''}", flush=True)
    t0 = time.perf_counter()
    result = module.run(quick=args.quick)
    result.setdefault("title", module.TITLE)
    result["elapsed_s"] = round(time.perf_counter() - t0, 3)
    for row in result.get("rows", []):
        shown = ", ".join(f"{k}={v}" for k, v in row.items() if k != "name")
        print(f"    {row.get('name')}: {shown}", flush=True)
    for key, value in (result.get("summary") or {}).items():
        print(f"    {key}: {value}", flush=True)
    json_path, md_path = write_results({name: result}, args.results_dir, quick=args.quick)
    print(f"wrote {json_path} and {md_path}")
    return 0


class EmulatorProcess:
    """`python -m n3_notebook.emulator --port 0` in a child process (its own CPU and GIL).

        with EmulatorProcess(token_delay=0.005, first_token_delay=0.1) as emu:
            url = emu.base_url("openai")

    Only 127.0.0.1. `pid` is the server's process id (for its CPU time)."""

    def __init__(
        self,
        token_delay: float | None = None,
        first_token_delay: float | None = None,
        start_timeout: float = 30.0,
    ) -> None:
        self.token_delay = token_delay
        self.first_token_delay = first_token_delay
        self.start_timeout = start_timeout
        self.base_urls: dict[str, str] = {}
        self._proc: Any = None
        self._stderr: Any = None

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise RuntimeError("the emulator is not running")
        return int(self._proc.pid)

    def base_url(self, provider: str) -> str:
        return self.base_urls[provider]

    def start(self) -> EmulatorProcess:
        import queue
        import subprocess
        import tempfile
        import threading

        from n3_notebook.emulator.models import PROVIDERS

        cmd = [sys.executable, "-m", "n3_notebook.emulator", "--host", "127.0.0.1", "--port", "0"]
        if self.token_delay is not None:
            cmd += ["--token-delay", repr(float(self.token_delay))]
        if self.first_token_delay is not None:
            cmd += ["--first-token-delay", repr(float(self.first_token_delay))]
        env = {k: v for k, v in os.environ.items() if not k.startswith("N3_")}
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
        self._proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=self._stderr, stdin=subprocess.DEVNULL, env=env
        )
        lines: queue.Queue[bytes] = queue.Queue()
        stdout = self._proc.stdout

        def reader() -> None:
            for raw in iter(stdout.readline, b""):
                lines.put(raw)
            lines.put(b"")

        threading.Thread(target=reader, name="emulator-stdout", daemon=True).start()
        deadline = time.monotonic() + self.start_timeout
        while not set(PROVIDERS) <= set(self.base_urls):
            try:
                raw = lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raw = None
            if not raw:
                err = self._error_text()
                self.stop()
                raise RuntimeError(f"the emulator process did not start: {err}")
            provider, _, url = raw.decode().strip().partition(" ")
            if url:
                self.base_urls[provider] = url
        return self

    def _error_text(self) -> str:
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")[-2000:]

    def stop(self) -> None:
        import signal
        import subprocess

        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)
            if proc.stdout is not None:
                proc.stdout.close()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def __enter__(self) -> EmulatorProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live process, all its threads (Linux /proc)."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        stat = f.read()
    # the command name (field 2) may hold spaces; fields after the last ')' are fixed
    fields = stat[stat.rindex(b")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


def wait_healthy(
    proc: subprocess.Popen[Any],
    url: str,
    name: str,
    output: Callable[[], str],
    timeout: float = 60.0,
    interval: float = 0.2,
    http_timeout: float = 1.0,
) -> None:
    """Poll `url` until it answers 200; RuntimeError (with the process's output) if the
    process exits first or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited: {output()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=http_timeout).status_code == 200:
                return
        time.sleep(interval)
    raise RuntimeError(f"{name} did not start: {output()}")
