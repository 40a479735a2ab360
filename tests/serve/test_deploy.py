"""deploy/: gunicorn with the service's worker class and deploy/gunicorn.conf.py, as the
deployment note runs it (offline: the bundled emulator answers)."""

from __future__ import annotations

import dataclasses
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from n3_notebook.serve.settings import Limits, limit_env

from .conftest import child_env, free_port, parse_sse, wait_healthy

pytest.importorskip("gunicorn")
pytest.importorskip("uvicorn_worker")
pytestmark = pytest.mark.timeout(90)
ROOT = Path(__file__).resolve().parents[2]


def test_gunicorn_with_the_deploy_config_serves_and_stops_on_sigterm(tmp_path):
    port = free_port()
    metrics = tmp_path / "metrics"
    env = child_env(
        N3_SERVE_FILE=str(ROOT / "deploy" / "example.n3"),
        N3_BIND=f"127.0.0.1:{port}",
        N3_WORKERS="2",
        N3_OFFLINE="1",
        N3_EMULATOR_TOKEN_DELAY="0",
        N3_EMULATOR_FIRST_TOKEN_DELAY="0",
        PROMETHEUS_MULTIPROC_DIR=str(metrics),
    )
    log = open(tmp_path / "gunicorn.log", "w+b")  # noqa: SIM115
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-c",
            str(ROOT / "deploy" / "gunicorn.conf.py"),
            "n3_notebook.serve.app:app_from_env()",
        ],
        env=env,
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )

    def output() -> str:
        log.seek(0)
        return log.read().decode(errors="replace")

    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc, output, timeout=60)
        for i in range(6):
            with httpx.stream(
                "POST",
                f"{url}/v1/generate/stream",
                json={"prompt": f"hello {i}", "model": "openai:gpt-4o-mini", "max_tokens": 20},
                timeout=20,
            ) as r:
                assert r.status_code == 200
                events = parse_sse(r.read().decode())
            assert events[-1]["event"] == "done" and events[-1]["data"]["ok"] is True
            assert any(e["event"] == "token" for e in events)
        text = httpx.get(f"{url}/metrics", timeout=10).text
        line = next(
            x
            for x in text.splitlines()
            if x.startswith("n3_http_requests_total") and "/v1/generate/stream" in x
        )
        assert float(line.rsplit(" ", 1)[1]) == 6
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(40) == 0, output()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        log.close()


def test_the_dockerfile_runs_unprivileged_with_the_service_limits():
    text = (ROOT / "deploy" / "Dockerfile").read_text(encoding="utf-8")
    users = [line.split()[1] for line in text.splitlines() if line.startswith("USER ")]
    assert users and users[-1] not in ("root", "0")
    env = dict(re.findall(r"\b(N3_SERVE_[A-Z_]+)=(\S+)", text))
    defaults = Limits()
    for f in dataclasses.fields(Limits):
        assert float(env[limit_env(f.name)]) == getattr(defaults, f.name), f.name
    assert "N3_SERVE_TOKEN=" not in text and "N3_SERVE_INSECURE_NO_AUTH" not in env
