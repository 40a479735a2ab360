from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

try:
    import redis
except ImportError:  # the serve extra's; the Redis tests skip without it
    redis = None

pytest.importorskip("fastapi")
pytest.importorskip("prometheus_client")

from n3_notebook import RetryConfig, create_provider
from n3_notebook.chain import Chain
from n3_notebook.core.registry import resolve_model
from n3_notebook.emulator import run_emulator
from n3_notebook.serve import create_app
from n3_notebook.serve.background import BackgroundServer
from n3_notebook.serve.settings import Limits

ROOT = Path(__file__).resolve().parents[2]
#: The key the factory's providers send upstream: it must never appear in an answer.
SECRET_KEY = "sk-serve-SECRET-0123456789abcdef"
MODEL = "openai:gpt-4o-mini"

TWO_STEP = """\
input topic
input style = "plain"
step outline: openai:gpt-4o-mini, max_tokens=12
    List three questions about {topic}, {style}.
step answers: openai:gpt-4o-mini, max_tokens=15
    system: Be brief.
    Answer each: {outline}
"""


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in (
        "N3_OFFLINE",
        "N3_SERVE_TOKEN",
        "N3_SERVE_MAX_CONCURRENT",
        "N3_SERVE_GRACE_PERIOD",
        "N3_SERVE_DEFAULT_MODEL",
        "N3_SERVE_PACING_INTERVAL",
        "N3_SERVE_TOKEN_FILE",
        "N3_SERVE_INSECURE_NO_AUTH",
        "N3_SERVE_CORS_ORIGINS",
        "N3_SERVE_GATEWAY_CONFIG",
        *(f"N3_SERVE_{f.upper()}" for f in Limits.__dataclass_fields__),
    ):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture(scope="module")
def emu() -> Iterator[Any]:
    with run_emulator(token_delay=0.001, first_token_delay=0.0) as e:
        yield e


@pytest.fixture(autouse=True)
def _reset(request: pytest.FixtureRequest) -> None:
    if "emu" in request.fixturenames:
        request.getfixturevalue("emu").reset()


class Factory:
    """provider_factory: one provider per model string, pointed at the emulator."""

    def __init__(self, emu: Any) -> None:
        self.emu = emu
        self.made: dict[str, Any] = {}
        self.calls = 0

    def __call__(self, spec: str) -> Any:
        self.calls += 1
        provider, _ = resolve_model(spec)
        p = create_provider(
            spec,
            api_key=None if provider == "ollama" else SECRET_KEY,
            base_url=self.emu.base_url(provider),
            retry=RetryConfig(max_attempts=2, base_delay=0.01, max_delay=0.05),
            max_concurrent=100,
        )
        self.made[spec] = p
        return p


def two_step() -> Chain:
    return Chain.parse(TWO_STEP, "brief")


@pytest.fixture
def factory(emu: Any) -> Factory:
    return Factory(emu)


@pytest.fixture
def serve(factory: Factory) -> Iterator[Any]:
    """serve(chains, **create_app kwargs) -> a running BackgroundServer (stopped after)."""
    servers: list[BackgroundServer] = []

    def start(chains: Any = None, **kw: Any) -> BackgroundServer:
        kw.setdefault("provider_factory", factory)
        kw.setdefault("token", "")
        app = create_app(chains if chains is not None else [two_step()], **kw)
        server = BackgroundServer(app).start()
        servers.append(server)
        return server

    yield start
    for s in servers:
        s.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def parse_sse(text: str) -> list[dict[str, Any]]:
    """Events as {"id": int, "event": str, "data": parsed JSON}."""
    out = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        if not block.strip() or block.startswith(":"):
            continue
        fields: dict[str, str] = {}
        for line in block.split("\n"):
            name, _, value = line.partition(": ")
            fields[name] = value
        out.append(
            {"id": int(fields["id"]), "event": fields["event"], "data": json.loads(fields["data"])}
        )
    return out


def wait_healthy(url: str, proc: Any, output: Any, timeout: float = 30.0) -> None:
    """Until GET url/healthz answers 200; fails with the server's output if the process
    `proc` exits first or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the server exited: {output()}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"the server did not start: {output()}")


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("N3_")}
    env.update(extra)
    return env


class ServeProcess:
    """`python -m n3_notebook serve FILE` in a subprocess on a free loopback port (pass
    `--host` among args to bind elsewhere; later flags win)."""

    def __init__(self, tmp_path: Path, file: Path, *args: str, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(tmp_path / f"serve-{self.port}.log", "w+b")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "n3_notebook",
                "serve",
                str(file),
                "--port",
                str(self.port),
                "--log-level",
                "warning",
                *args,
            ],
            env=child_env(**env),
            cwd=ROOT,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def wait_ready(self, timeout: float = 30.0) -> None:
        wait_healthy(self.url, self.proc, self.output, timeout)

    def stop_gracefully(self, timeout: float = 30.0) -> None:
        """SIGTERM and wait: workers finish and run their exit hooks (the call log's flush)."""
        self.proc.send_signal(signal.SIGTERM)
        assert self.proc.wait(timeout) in (0, -signal.SIGTERM), self.output()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.log.close()


@pytest.fixture
def spawn(tmp_path: Path):
    procs: list[ServeProcess] = []

    def start(text: str, *args: str, **env: str) -> ServeProcess:
        file = tmp_path / "chains.n3"
        file.write_text(text, encoding="utf-8")
        p = ServeProcess(tmp_path, file, *args, **env)
        procs.append(p)
        p.wait_ready()
        return p

    yield start
    for p in procs:
        p.close()


def redis_server_path() -> str | None:
    exe = os.environ.get("N3_REDIS_SERVER") or shutil.which("redis-server")
    if exe is None and os.path.exists("/usr/bin/redis-server"):
        exe = "/usr/bin/redis-server"
    return exe


class RedisServer:
    def __init__(self) -> None:
        exe = redis_server_path()
        assert exe is not None
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc = subprocess.Popen(
            [
                exe,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url, socket_timeout=1)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.RedisError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.05)
        client.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A real redis-server on a free loopback port, stopped by its PID after the test."""
    if redis is None:
        pytest.skip("the redis package is not installed (the serve extra)")
    if redis_server_path() is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is missing (scripts/install_redis.sh installs it)")
        pytest.skip("redis-server is not installed (scripts/install_redis.sh)")
    server = RedisServer()
    yield server
    server.stop()
