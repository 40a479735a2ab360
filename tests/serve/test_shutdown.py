"""The real command in a subprocess: `python -m n3_notebook serve FILE`, SIGTERM while a
stream runs (it finishes within the grace period, or ends cleanly when the period runs
out), and --workers."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from n3_notebook.emulator import run_emulator

from .conftest import SECRET_KEY, ServeProcess, child_env, parse_sse

pytestmark = pytest.mark.timeout(60)
ROOT = Path(__file__).resolve().parents[2]


def _stream_with_sigterm(p: ServeProcess, path: str, after_tokens: int = 3) -> list[dict[str, Any]]:
    body = b""
    signalled = False
    with httpx.stream("POST", p.url + path, json={}, timeout=30) as r:
        assert r.status_code == 200
        for chunk in r.iter_bytes():
            body += chunk
            if not signalled and body.count(b"event: token") >= after_tokens:
                p.proc.send_signal(signal.SIGTERM)
                signalled = True
    assert signalled
    return parse_sse(body.decode())


def test_sigterm_lets_a_running_stream_finish(spawn):
    with run_emulator(token_delay=0.01, first_token_delay=0.0) as emu:
        p = spawn(
            "chain story\nstep a: openai:gpt-4o-mini~long:150\n    Tell a story.\n",
            "--grace-period",
            "20",
            OPENAI_API_KEY=SECRET_KEY,
            OPENAI_BASE_URL=emu.base_url("openai"),
        )
        events = _stream_with_sigterm(p, "/chains/story/stream")
        assert events[-1]["event"] == "done" and events[-1]["data"]["ok"] is True
        assert sum(e["event"] == "token" for e in events) == 150
        assert p.proc.wait(15) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal
        rec = emu.records[-1]
        assert rec.completed and not rec.client_disconnected
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{p.url}/healthz", timeout=2)


def test_sigterm_stops_streams_cleanly_after_the_grace_period(spawn):
    with run_emulator(token_delay=0.005, first_token_delay=0.0) as emu:
        p = spawn(
            "chain story\nstep a: openai:gpt-4o-mini~long:20000\n    Tell a long story.\n",
            "--grace-period",
            "0.5",
            OPENAI_API_KEY=SECRET_KEY,
            OPENAI_BASE_URL=emu.base_url("openai"),
        )
        t0 = time.monotonic()
        events = _stream_with_sigterm(p, "/chains/story/stream")
        took = time.monotonic() - t0
        assert [e["event"] for e in events[-2:]] == ["error", "done"]
        assert events[-2]["data"]["error"]["type"] == "shutdown"
        assert events[-1]["data"] == {"ok": False, "reason": "shutdown"}
        assert took < 8
        assert p.proc.wait(15) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal
        rec = emu.wait_for_close_sync(-1, timeout=5)
        assert rec.client_disconnected and rec.tokens_sent < 20000
    assert SECRET_KEY not in p.output()


def test_workers_serve_offline_and_stop_on_sigterm(spawn):
    p = spawn(
        'chain hello\ninput who = "world"\nstep a:\n    Say hello to {who}.\n',
        "--workers",
        "2",
        N3_OFFLINE="1",
        N3_EMULATOR_TOKEN_DELAY="0",
        N3_EMULATOR_FIRST_TOKEN_DELAY="0",
    )
    for who in ("ada", "bob", "cy", "dee", "eve", "fay", "gus", "hal"):
        r = httpx.post(f"{p.url}/chains/hello/run", json={"who": who}, timeout=10)
        assert r.status_code == 200 and r.json()["steps"]["a"]["model"] == "emulator:demo"
    # one /metrics over both workers (prometheus_client's multiprocess mode)
    text = httpx.get(f"{p.url}/metrics", timeout=10).text
    line = next(
        x
        for x in text.splitlines()
        if x.startswith("n3_http_requests_total") and "/chains/hello/run" in x
    )
    assert float(line.rsplit(" ", 1)[1]) == 8
    p.proc.send_signal(signal.SIGTERM)
    assert p.proc.wait(20) in (0, -signal.SIGTERM)


def test_bad_file_is_reported_before_serving(tmp_path):
    bad = tmp_path / "bad.n3"
    bad.write_text("chain x\nstep a openai:gpt-4o-mini\n    hi\n", encoding="utf-8")
    r = subprocess.run(
        [sys.executable, "-m", "n3_notebook", "serve", str(bad)],
        cwd=ROOT,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2
    assert "line 2" in r.stderr and "bad.n3" in r.stderr and "Traceback" not in r.stderr
    r = subprocess.run(
        [sys.executable, "-m", "n3_notebook"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 2 and "serve" in r.stdout
