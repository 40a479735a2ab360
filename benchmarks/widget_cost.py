"""Widget cost: a real kernel (ipykernel driven by jupyter_client, as a notebook frontend
drives it) streams ~2,000 tokens/s into the %%llm widget for ~10 s. Measured per cell:
iopub comm messages per second (widget frames), their bytes, the kernel process's CPU
(utime + stime of every thread, from /proc) as a percentage of one core, and whether the
final text is exactly the emulator's answer.

Peers in the same run, on the same kernel and the same emulator: the same cell with
`--no-widget` (plain text output), and the same stream consumed by a bare
`OpenAIProvider.stream_generate` loop in a cell with no view at all (the floor: HTTP, SSE
decoding and chunk mapping in the kernel). The variants are interleaved round by round.

The emulator runs in its own process (`python -m n3_notebook.emulator`), paced at 0.5 ms
per token, so its CPU is not billed to the kernel."""

from __future__ import annotations

import contextlib
import hashlib
import html
import json
import os
import re
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ._util import EmulatorProcess, process_cpu_seconds

TITLE = "Widget cost: a kernel streaming ~2,000 tokens/s into the %%llm widget"

ROOT = Path(__file__).resolve().parent.parent

TOKENS = 20_000
QUICK_TOKENS = 4_000
TOKEN_DELAY = 0.0005
ROUNDS = 3
QUICK_ROUNDS = 1
MODEL = "gpt-4o-mini"
PROMPT = "Tell me a very long story about streaming tokens"
KEY = "sk-bench-widget-FAKE-0123456789"

MSGS_TARGET = 25.0  # comm messages per second
CPU_TARGET = 20.0  # % of one core

#: Environment variables that would point the kernel somewhere else.
_CLEARED = (
    "N3_OFFLINE",
    "N3_EMULATOR_TOKEN_DELAY",
    "N3_EMULATOR_FIRST_TOKEN_DELAY",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
)

VARIANTS = (
    "widget",
    "--no-widget",
    "provider only (no view)",
    "bare httpx reads (no view)",
    "idle kernel",
)
#: Variants whose response is checked against the emulator's answer.
CHECKED = VARIANTS[:3]
IDLE_MAX_S = 3.0

_REPORT = """\
import hashlib as _n3_h
print("N3_RESULT", _n3_h.sha256({var}.content.encode()).hexdigest(), {var}.usage.output_tokens,
      repr({var}.latency), repr({var}.time_to_first_token), {var}.finish_reason)
"""

_PROVIDER_ONLY = """\
import n3_notebook as _n3
from n3_notebook.core.collect import ResponseBuilder as _n3_RB
async def _n3_consume(model, prompt):
    cfg = _n3.StreamConfig(stream_timeout=None, chunk_timeout=60)
    async with _n3.OpenAIProvider(model=model) as p:
        b = _n3_RB(p.name, p.model)
        async for chunk in p.stream_generate(prompt, stream_config=cfg):
            b.add(chunk)
        return b.build()
r = await _n3_consume({model!r}, {prompt!r})
"""


_BARE_HTTPX = """\
import time as _n3_t, os as _n3_os, httpx as _n3_httpx
async def _n3_bare(model, prompt):
    body = {{"model": model, "stream": True, "messages": [{{"role": "user", "content": prompt}}]}}
    headers = {{"authorization": "Bearer " + _n3_os.environ["OPENAI_API_KEY"]}}
    url = _n3_os.environ["OPENAI_BASE_URL"].rstrip("/") + "/chat/completions"
    async with _n3_httpx.AsyncClient(timeout=60) as client:
        t0 = _n3_t.perf_counter()
        async with client.stream("POST", url, json=body, headers=headers) as resp:
            reads = 0
            async for _ in resp.aiter_raw():
                reads += 1
        return reads, _n3_t.perf_counter() - t0
_n3_reads, _n3_s = await _n3_bare({model!r}, {prompt!r})
print("N3_RESULT - 0", repr(_n3_s), "None", "reads=%d" % _n3_reads)
"""

_IDLE = """\
import asyncio as _n3_aio, time as _n3_t
_n3_t0 = _n3_t.perf_counter()
await _n3_aio.sleep({seconds!r})
print("N3_RESULT - 0", repr(_n3_t.perf_counter() - _n3_t0), "None", "idle")
"""


def cell_code(variant: str, tokens: int) -> str:
    model = f"{MODEL}~long:{tokens}"
    if variant == "widget":
        return f"%%llm openai:{model} -o r\n{PROMPT}"
    if variant == "--no-widget":
        return f"%%llm openai:{model} --no-widget -o r\n{PROMPT}"
    if variant == "provider only (no view)":
        return _PROVIDER_ONLY.format(model=model, prompt=PROMPT)
    if variant == "bare httpx reads (no view)":
        return _BARE_HTTPX.format(model=model, prompt=PROMPT)
    if variant == "idle kernel":
        return _IDLE.format(seconds=min(IDLE_MAX_S, tokens * TOKEN_DELAY))
    raise ValueError(variant)


def expected_text(tokens: int) -> str:
    from n3_notebook.emulator import expected_answer

    messages = [{"role": "user", "content": PROMPT}]
    return expected_answer("openai", f"{MODEL}~long:{tokens}", messages, length=tokens).text


@contextlib.contextmanager
def _kernel_environment(base_url: str) -> Iterator[dict[str, str]]:
    """The harness copies os.environ into the kernel: clear what would mislead it."""
    saved = {k: os.environ.pop(k) for k in _CLEARED if k in os.environ}
    try:
        yield {"OPENAI_BASE_URL": base_url, "OPENAI_API_KEY": KEY}
    finally:
        os.environ.update(saved)


def _widget_final_text(ex: Any) -> str | None:
    """The text the widget showed: its frozen segments (HTML widgets opened during the
    stream, each exactly one <pre>) followed by the live tail's last non-empty frame (sent
    just before the pane is cleared, when the answer is published as a regular output)."""
    pre = re.compile(r"<pre[^>]*>(.*?)</pre>", re.S)
    segments = []
    for opened in ex.comm_opens:
        value = opened["data"].get("state", {}).get("value")
        if isinstance(value, str) and value.startswith("<pre") and value.endswith("</pre>"):
            matched = pre.match(value)
            if matched is not None:
                segments.append(matched.group(1))
    tail = ""
    for _, _, data in ex.widget_updates:
        value = data.get("state", {}).get("value")
        if isinstance(value, str):
            m = pre.search(value)
            if m and m.group(1):
                tail = m.group(1)
    if not segments and not tail:
        return None
    return html.unescape("".join(segments) + tail)


def measure_cell(kernel: Any, variant: str, tokens: int, emu_pid: int) -> dict[str, Any]:
    code = cell_code(variant, tokens)
    pid = kernel.km.provisioner.process.pid
    kernel.pump(0.05)  # drain anything left over
    cpu0 = process_cpu_seconds(pid)
    emu0 = process_cpu_seconds(emu_pid)
    t0 = time.perf_counter()
    ex = kernel.submit(code)
    kernel.wait(ex, timeout=60 + tokens * TOKEN_DELAY * 20)
    wall = time.perf_counter() - t0
    cpu = process_cpu_seconds(pid) - cpu0
    emu_cpu = process_cpu_seconds(emu_pid) - emu0
    if ex.status != "ok":
        raise RuntimeError(f"{variant} cell failed: {ex.text()[-2000:]}")

    check = kernel.run(_REPORT.format(var="r"), timeout=30) if variant in CHECKED else ex
    m = re.search(r"N3_RESULT (\S+) (\d+) (\S+) (\S+) (\S+)", check.text())
    if check.status != "ok" or m is None:
        raise RuntimeError(f"cannot read the result of the {variant} cell: {check.text()[-2000:]}")
    digest = m.group(1)
    out_tokens = int(m.group(2)) if variant in CHECKED else None
    latency = float(m.group(3))
    finish = m.group(5)

    comm = ex.widget_updates
    comm_bytes = sum(len(json.dumps(data)) for _, _, data in comm)
    kinds: dict[str, int] = {}
    for o in ex.outputs:
        kinds[o["msg_type"]] = kinds.get(o["msg_type"], 0) + 1
    return {
        "variant": variant,
        "wall_s": wall,
        "stream_s": latency,
        "kernel_cpu_s": cpu,
        "emulator_cpu_s": emu_cpu,
        "comm_msgs": len(comm),
        "comm_bytes": comm_bytes,
        "stream_msgs": kinds.get("stream", 0),
        "display_msgs": kinds.get("display_data", 0) + kinds.get("execute_result", 0),
        "tokens": out_tokens,
        "finish": finish,
        "digest": digest,
        "published": ex.data("text/markdown"),
        "stdout": "".join(o["content"]["text"] for o in ex.outputs if o["msg_type"] == "stream"),
        "widget_text": _widget_final_text(ex) if variant == "widget" else None,
    }


def _text_ok(sample: dict[str, Any], expected: str) -> bool:
    """The stream's own result, and what the user saw, are exactly the emulator's answer."""
    ok = sample["digest"] == hashlib.sha256(expected.encode()).hexdigest()
    if sample["variant"] == "widget":
        ok = ok and sample["published"] == [expected] and sample["widget_text"] == expected
    elif sample["variant"] == "--no-widget":
        ok = ok and expected in sample["stdout"]
    return ok


def run(quick: bool = False) -> dict[str, Any]:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from tests.kernel.harness import Kernel

    tokens = QUICK_TOKENS if quick else TOKENS
    rounds = QUICK_ROUNDS if quick else ROUNDS
    expected = expected_text(tokens)
    samples: dict[str, list[dict[str, Any]]] = {v: [] for v in VARIANTS}

    with EmulatorProcess(token_delay=TOKEN_DELAY, first_token_delay=0.0) as emu:
        with _kernel_environment(emu.base_url("openai")) as env:
            kernel = Kernel(env=env)
        try:
            ex = kernel.run("%load_ext n3_notebook", timeout=60)
            if ex.status != "ok":
                raise RuntimeError(f"%load_ext failed: {ex.text()[-2000:]}")
            for variant in VARIANTS:  # warm-up: imports, widget classes, connections
                measure_cell(kernel, variant, 200, emu.pid)
            for _ in range(rounds):
                for variant in VARIANTS:
                    samples[variant].append(measure_cell(kernel, variant, tokens, emu.pid))
        finally:
            kernel.close()

    rows: list[dict[str, Any]] = []
    med: dict[str, dict[str, float]] = {}
    all_ok = True
    for variant in VARIANTS:
        got = samples[variant]
        streams = variant != "idle kernel"
        ok: bool | None = None
        if variant in CHECKED:
            ok = all(_text_ok(s, expected) and s["tokens"] == tokens for s in got)
            all_ok = all_ok and ok
        m = {
            "cpu_pct": statistics.median(100 * s["kernel_cpu_s"] / s["wall_s"] for s in got),
            "cpu_ms_per_1k": statistics.median(1e6 * s["kernel_cpu_s"] / tokens for s in got),
            "msgs_per_s": statistics.median(s["comm_msgs"] / s["stream_s"] for s in got),
            "kb_per_s": statistics.median(s["comm_bytes"] / 1e3 / s["stream_s"] for s in got),
            "stream_msgs_per_s": statistics.median(s["stream_msgs"] / s["stream_s"] for s in got),
            "tok_per_s": statistics.median(tokens / s["stream_s"] for s in got),
            "wall_s": statistics.median(s["wall_s"] for s in got),
            "emu_cpu_pct": statistics.median(100 * s["emulator_cpu_s"] / s["wall_s"] for s in got),
        }
        med[variant] = m
        rows.append(
            {
                "name": variant,
                "kernel_cpu_pct": round(m["cpu_pct"], 1),
                "cpu_ms_per_1k_tokens": round(m["cpu_ms_per_1k"], 1) if streams else None,
                "comm_msgs_per_s": round(m["msgs_per_s"], 1),
                "comm_kB_per_s": round(m["kb_per_s"], 1),
                "stream_msgs_per_s": round(m["stream_msgs_per_s"], 1),
                "tokens_per_s": round(m["tok_per_s"]) if streams else None,
                "cell_wall_s": round(m["wall_s"], 2),
                "emulator_cpu_pct": round(m["emu_cpu_pct"], 1),
                "text_identical": ok,
                "runs": len(got),
            }
        )
    widget, plain, floor, bare, idle = (med[v] for v in VARIANTS)
    summary: dict[str, Any] = {
        "widget_comm_msgs_per_s": round(widget["msgs_per_s"], 1),
        "widget_kernel_cpu_pct": round(widget["cpu_pct"], 1),
        "no_widget_kernel_cpu_pct": round(plain["cpu_pct"], 1),
        "provider_only_kernel_cpu_pct": round(floor["cpu_pct"], 1),
        "ratio_cpu_widget_vs_no_widget": round(widget["cpu_pct"] / plain["cpu_pct"], 2)
        if plain["cpu_pct"] > 0
        else None,
        "ratio_cpu_widget_vs_provider_only": round(widget["cpu_pct"] / floor["cpu_pct"], 2)
        if floor["cpu_pct"] > 0
        else None,
        "bare_httpx_kernel_cpu_pct": round(bare["cpu_pct"], 1),
        "idle_kernel_cpu_pct": round(idle["cpu_pct"], 1),
        "widget_cost_pct_points": round(widget["cpu_pct"] - floor["cpu_pct"], 1),
        "widget_tokens_per_s": round(widget["tok_per_s"]),
        "final_text_identical": all_ok,
        "msgs_target_met": widget["msgs_per_s"] <= MSGS_TARGET,
        "cpu_target_met": widget["cpu_pct"] <= CPU_TARGET,
    }
    return {
        "title": TITLE,
        "params": {
            "tokens": tokens,
            "token_delay_s": TOKEN_DELAY,
            "nominal_tokens_per_s": round(1 / TOKEN_DELAY),
            "rounds": rounds,
            "model": f"openai:{MODEL}~long:{tokens}",
            "statistic": "median over rounds (variants interleaved, one warm-up cell each)",
        },
        "columns": [
            "name",
            "kernel_cpu_pct",
            "cpu_ms_per_1k_tokens",
            "comm_msgs_per_s",
            "comm_kB_per_s",
            "stream_msgs_per_s",
            "tokens_per_s",
            "emulator_cpu_pct",
            "text_identical",
        ],
        "rows": rows,
        "summary": summary,
        "notes": [
            "kernel_cpu_pct: the kernel process's CPU (all threads) from the cell's submission "
            "to its idle status, as % of one core over that wall time.",
            "comm_msgs_per_s / comm_kB_per_s: iopub comm_msg messages (widget state updates) "
            "and their JSON size, per second of the stream (its latency as the kernel saw it).",
            "stream_msgs_per_s: iopub `stream` (stdout) messages per second.",
            "Peers: 'provider only' consumes the same stream with OpenAIProvider.stream_generate "
            "in a cell (no view); 'bare httpx reads' reads the same response with "
            "httpx aiter_raw() and decodes nothing (what any Python client pays per read); "
            f"'idle kernel' awaits asyncio.sleep (<= {IDLE_MAX_S:g} s) with nothing streaming. "
            "widget_cost_pct_points = widget - provider only.",
            "text_identical: the response's content (sha256), and what the user saw (the "
            "widget's last full frame and the published Markdown; --no-widget: stdout), equal "
            "the emulator's answer exactly.",
            f"Targets (issue 10): <= {MSGS_TARGET:g} messages/s, kernel CPU <= {CPU_TARGET:g}% "
            "of a core, final text identical.",
        ],
    }


if __name__ == "__main__":
    from benchmarks._util import main

    sys.exit(main(sys.modules[__name__]))
