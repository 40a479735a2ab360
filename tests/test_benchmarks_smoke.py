"""`python -m benchmarks sse_decode --quick` runs and writes well-formed results, and so do
`python -m benchmarks.<name> --quick` for the modules that run on their own.

A smoke test only: it checks the shape of the output, never the timings."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_sse_decode_quick_writes_results(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks",
            "sse_decode",
            "--quick",
            "--results-dir",
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads((tmp_path / "latest.json").read_text(encoding="utf-8"))
    entry = data["benchmarks"]["sse_decode"]
    assert entry["quick"] is True
    assert {"platform", "python", "cpu_count", "packages", "date"} <= set(entry["machine"])
    assert entry["params"]["events"] > 0
    rows = {row["name"]: row for row in entry["rows"]}
    assert "n3_notebook" in rows and "openai" in rows
    for row in rows.values():
        assert row["events_per_s"] > 0
        assert {"median_ms", "cpu_ms", "MB_per_s", "vs_openai"} <= set(row)
    assert {"ratio_ours_vs_openai", "goal_2x_met"} <= set(entry["summary"])
    md = (tmp_path / "latest.md").read_text(encoding="utf-8")
    assert "sse_decode" in md and "| n3_notebook |" in md


def test_results_merge_keyed_by_name(tmp_path: Path) -> None:
    (tmp_path / "latest.json").write_text(
        json.dumps({"benchmarks": {"other": {"title": "kept", "rows": []}}}), encoding="utf-8"
    )
    sys.path.insert(0, str(ROOT))
    try:
        from benchmarks._util import write_results
    finally:
        sys.path.remove(str(ROOT))
    write_results({"x": {"title": "new", "rows": [{"name": "a", "v": 1.5}]}}, tmp_path)
    data = json.loads((tmp_path / "latest.json").read_text(encoding="utf-8"))
    assert set(data["benchmarks"]) == {"other", "x"}
    assert data["benchmarks"]["other"]["title"] == "kept"
    assert "| a | 1.5 |" in (tmp_path / "latest.md").read_text(encoding="utf-8")


def test_unknown_benchmark_is_an_error(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "nope", "--results-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode != 0
    assert "unknown benchmark" in proc.stderr
    assert not (tmp_path / "latest.json").exists()


def run_module(name: str, results_dir: Path, timeout: float) -> dict[str, Any]:
    """`python -m benchmarks.<name> --quick --results-dir DIR`; its latest.json entry."""
    proc = subprocess.run(
        [sys.executable, "-m", f"benchmarks.{name}", "--quick", "--results-dir", str(results_dir)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads((results_dir / "latest.json").read_text(encoding="utf-8"))
    entry = data["benchmarks"][name]
    assert entry["quick"] is True
    assert {"platform", "python", "cpu_count", "packages", "date"} <= set(entry["machine"])
    assert entry["title"] and entry["elapsed_s"] > 0
    md = (results_dir / "latest.md").read_text(encoding="utf-8")
    assert f"## {name}: " in md
    for row in entry["rows"]:
        assert f"| {row['name']} |" in md
    return entry


@pytest.mark.timeout(300)
def test_startup_quick(tmp_path: Path) -> None:
    entry = run_module("startup", tmp_path, 240)
    rows = {row["name"]: row for row in entry["rows"]}
    expected = {
        "import n3_notebook",
        "n3_notebook.OpenAIProvider",
        "%load_ext n3_notebook (fresh kernel)",
        "import httpx",
        "import openai",
        "import anthropic",
    }
    assert expected <= set(rows)
    for name in expected:
        assert rows[name]["median_ms"] > 0
        assert rows[name]["vs_httpx"] > 0 and rows[name]["vs_anthropic"] > 0
    # `import n3_notebook` alone stays lazy: none of the heavy packages comes with it
    assert rows["import n3_notebook"]["eager"] == "–"
    summary = entry["summary"]
    assert {"import_target_met", "load_ext_target_met", "ratio_import_vs_openai"} <= set(summary)
    assert any("importtime" in note for note in entry["notes"])


@pytest.mark.kernel
@pytest.mark.timeout(300)
def test_widget_cost_quick(tmp_path: Path) -> None:
    entry = run_module("widget_cost", tmp_path, 240)
    rows = {row["name"]: row for row in entry["rows"]}
    assert {"widget", "--no-widget", "provider only (no view)", "idle kernel"} <= set(rows)
    widget = rows["widget"]
    assert widget["comm_msgs_per_s"] > 0 and widget["kernel_cpu_pct"] > 0
    assert rows["--no-widget"]["comm_msgs_per_s"] == 0
    # correctness, not speed: every variant delivered exactly the emulator's answer
    for name in ("widget", "--no-widget", "provider only (no view)"):
        assert rows[name]["text_identical"] is True
    assert entry["summary"]["final_text_identical"] is True
    assert {"msgs_target_met", "cpu_target_met"} <= set(entry["summary"])


@pytest.mark.timeout(400)
def test_seed_claims_quick(tmp_path: Path) -> None:
    entry = run_module("seed_claims", tmp_path, 360)
    names = [row["name"] for row in entry["rows"]]
    assert any("generate(), sequential" in n for n in names)
    assert any("max_concurrent=10" in n for n in names)
    assert any("raw-socket" in n for n in names)
    assert "stream_generate: first text chunk" in names
    summary = entry["summary"]
    assert summary["answers_identical"] is True
    for key in (
        "speedup_concurrent_limit10_vs_sequential",
        "speedup_concurrent_limitN_vs_sequential",
        "ratio_wait_vs_stream_ttft",
    ):
        assert summary[key] > 0


@pytest.mark.timeout(300)
def test_streaming_benchmarks_quick(tmp_path: Path) -> None:
    """throughput, first_token and concurrency run end to end (every text checked inside
    them); shape only here, no timing gate."""
    names = ["throughput", "first_token", "concurrency"]
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", *names, "--quick", "--results-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    data = json.loads((tmp_path / "latest.json").read_text(encoding="utf-8"))["benchmarks"]
    rows = {n: {r["name"]: r for r in data[n]["rows"]} for n in names}
    assert rows["throughput"]["n3_notebook OpenAIProvider"]["tokens_per_s"] > 0
    assert {"ours_openai_vs_openai_sdk", "ours_anthropic_vs_anthropic_sdk"} <= set(
        data["throughput"]["summary"]
    )
    assert rows["first_token"]["n3_notebook OpenAIProvider"]["median_ms"] > 0
    conc = data["concurrency"]
    assert conc["summary"]["ours_intact_C100"] == "100/100"
    assert conc["summary"]["ours_kib_per_idle_stream"] is not None


@pytest.mark.timeout(120)
def test_shared_rates_quick(tmp_path: Path) -> None:
    entry = run_module("shared_rates", tmp_path, 90)
    rows = {row["name"]: row for row in entry["rows"]}
    if not rows:
        assert "skipped" in entry["summary"]
        return
    assert rows["acquire, group in Redis"]["cpu_us_per_acquire"] > 0
    assert rows["two groups sharing Redis"]["ratio_to_budget"] <= 1.05
    assert rows["two groups of their own"]["ratio_to_budget"] > 1.5
