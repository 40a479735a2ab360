"""Request limits against the real server process: body size (a 400 MB body refused with
the worker's memory flat), headers, prompt and max_tokens caps, the wall-clock limit,
security headers, CORS, and errors that echo nothing a client sent."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time

import httpx
import psutil
import pytest

from n3_notebook.serve import Limits

from .conftest import ROOT, child_env, parse_sse

pytestmark = pytest.mark.timeout(90)
OFFLINE = {
    "N3_OFFLINE": "1",
    "N3_EMULATOR_TOKEN_DELAY": "0",
    "N3_EMULATOR_FIRST_TOKEN_DELAY": "0",
}
CHAIN = 'chain hello\ninput who = "world"\nstep a:\n    Say hello to {who}.\n'
MODEL = "openai:gpt-4o-mini"
MB = 1 << 20
#: What the worker may grow by while a 400 MB body is refused (it grew 820 MB before).
RSS_BOUND = 40 * MB


@pytest.fixture
def server(spawn):
    return spawn(CHAIN, **OFFLINE)


def _connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=20)


def _read_head(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


class PeakRSS:
    """The largest resident size of a process, sampled every 20 ms while in the block."""

    def __init__(self, pid: int) -> None:
        self.proc = psutil.Process(pid)
        self.start = self.peak = self.proc.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self.proc.memory_info().rss)

    def __enter__(self) -> PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        time.sleep(0.2)
        self._stop.set()
        self._thread.join()

    @property
    def growth(self) -> int:
        return self.peak - self.start


def _warm_up(url: str) -> None:
    for _ in range(3):  # the first requests import and allocate what every later one uses
        r = httpx.post(f"{url}/v1/generate", json={"prompt": "hi", "model": MODEL})
        assert r.status_code == 200


def test_a_400_mb_body_is_refused_unread_and_memory_stays_flat(server):
    _warm_up(server.url)
    block = b"x" * MB  # sent 400 times: the test allocates 1 MB, not 400
    with PeakRSS(server.proc.pid) as rss:
        sock = _connect(server.url)
        sock.sendall(
            b"POST /v1/generate HTTP/1.1\r\nhost: t\r\ncontent-type: application/json\r\n"
            b"content-length: %d\r\n\r\n" % (400 * MB)
        )
        sock.sendall(block[:65536])
        head = _read_head(sock)  # answered before the body: no waiting for 400 MB
        assert head.startswith(b"HTTP/1.1 413 ")
        assert b"connection: close" in head.lower()
        sent = 65536
        t0 = time.monotonic()
        try:
            for _ in range(400):
                sock.sendall(block)
                sent += MB
        except OSError:
            pass  # the server closed the connection: it does not read the rest
        sock.close()
        took = time.monotonic() - t0
    assert sent < 64 * MB, f"the server went on reading: {sent // MB} MB accepted"
    assert took < 20
    print(f"RSS growth {rss.growth / MB:.1f} MB, accepted {sent / MB:.1f} MB in {took:.2f} s")
    assert rss.growth < RSS_BOUND, f"the worker grew by {rss.growth // MB} MB"
    # and the server is fine
    assert httpx.get(f"{server.url}/healthz").status_code == 200


def test_a_chunked_body_past_the_limit_is_cut_off(server):
    _warm_up(server.url)
    chunk = b"%x\r\n%s\r\n" % (MB, b"x" * MB)
    with PeakRSS(server.proc.pid) as rss:
        sock = _connect(server.url)
        sock.sendall(
            b"POST /v1/generate HTTP/1.1\r\nhost: t\r\ncontent-type: application/json\r\n"
            b"transfer-encoding: chunked\r\n\r\n"
        )
        sent = 0
        try:
            for _ in range(400):
                sock.sendall(chunk)
                sent += MB
        except OSError:
            pass
        head = _read_head(sock)
        sock.close()
    assert head.startswith(b"HTTP/1.1 413 "), head[:200]
    assert sent < 64 * MB

    # what an ordinary client sees (httpx reads the answer after its write fails)
    def body():
        for _ in range(400):
            yield chunk[:MB]

    r = httpx.post(
        f"{server.url}/v1/generate",
        content=body(),
        headers={"content-type": "application/json"},
        timeout=30,
    )
    assert r.status_code == 413 and r.json()["error"]["type"] == "body_too_large"
    assert rss.growth < RSS_BOUND


def test_body_limit_answers_json_and_is_configurable(spawn):
    p = spawn(CHAIN, "--max-body-bytes", "2000", **OFFLINE)
    r = httpx.post(f"{p.url}/v1/generate", json={"prompt": "x" * 3000, "model": MODEL})
    assert r.status_code == 413
    assert r.json()["error"]["type"] == "body_too_large" and "x" * 50 not in r.text
    assert "2000" in r.json()["error"]["message"]
    ok = httpx.post(f"{p.url}/v1/generate", json={"prompt": "x" * 1000, "model": MODEL})
    assert ok.status_code == 200


def test_headers_over_size_or_count_are_refused(spawn):
    p = spawn(CHAIN, **OFFLINE, N3_SERVE_MAX_HEADERS="20", N3_SERVE_MAX_HEADER_BYTES="4096")
    many = {f"x-h{i}": "v" for i in range(30)}
    r = httpx.get(f"{p.url}/chains", headers=many)
    assert r.status_code == 431 and r.json()["error"]["type"] == "headers_too_large"
    r = httpx.get(f"{p.url}/chains", headers={"x-big": "a" * 5000})
    assert r.status_code == 431
    sock = _connect(p.url)  # a head that never ends is cut off at the limit, not buffered
    sock.sendall(b"GET /chains HTTP/1.1\r\nhost: t\r\nx-endless: ")
    try:
        for _ in range(100):
            sock.sendall(b"a" * 1024)
    except OSError:
        pass
    assert _read_head(sock).startswith(b"HTTP/1.1 431 ")
    sock.close()
    assert httpx.get(f"{p.url}/chains", headers={"x-h": "v" * 1000}).status_code == 200


def test_prompt_and_max_tokens_caps(spawn):
    p = spawn(CHAIN, **OFFLINE, N3_SERVE_MAX_PROMPT_CHARS="100", N3_SERVE_MAX_OUTPUT_TOKENS="50")
    secret_prompt = "my-private-prompt-" + "p" * 100
    for body in (
        {"prompt": secret_prompt, "model": MODEL},
        {"prompt": "hi", "system": secret_prompt, "model": MODEL},
        {"prompt": "hi", "model": MODEL, "max_tokens": 51},
    ):
        for route in ("/v1/generate", "/v1/generate/stream"):
            r = httpx.post(p.url + route, json=body)
            assert r.status_code == 422, (route, body)
            assert "my-private-prompt" not in r.text
    r = httpx.post(f"{p.url}/chains/hello/run", json={"who": secret_prompt})
    assert r.status_code == 422 and r.json()["error"]["type"] == "input_too_long"
    assert "my-private-prompt" not in r.text
    ok = httpx.post(f"{p.url}/v1/generate", json={"prompt": "hi", "model": MODEL, "max_tokens": 50})
    assert ok.status_code == 200
    schema = httpx.get(f"{p.url}/openapi.json").json()["components"]["schemas"]
    assert schema["GenerateRequest"]["properties"]["prompt"]["maxLength"] == 100


def test_a_request_is_stopped_at_the_wall_clock_limit(spawn):
    p = spawn(
        CHAIN,
        "--request-timeout",
        "1",
        **{**OFFLINE, "N3_EMULATOR_TOKEN_DELAY": "0.2"},
    )
    body = {"prompt": "hi", "model": MODEL, "max_tokens": 40}  # 8 s of tokens
    t0 = time.monotonic()
    r = httpx.post(f"{p.url}/v1/generate", json=body, timeout=30)
    assert r.status_code == 504 and r.json()["error"]["type"] == "request_timeout"
    with httpx.stream("POST", f"{p.url}/v1/generate/stream", json=body, timeout=30) as s:
        assert s.status_code == 200
        events = parse_sse(s.read().decode())
    took = time.monotonic() - t0
    assert [e["event"] for e in events[-2:]] == ["error", "done"]
    assert events[-2]["data"]["error"]["type"] == "request_timeout"
    assert any(e["event"] == "token" for e in events)
    assert took < 8


def test_stream_limits_are_flags_and_the_error_names_the_flag(spawn):
    p = spawn(
        CHAIN,
        "--first-token-timeout",
        "0.3",
        **{**OFFLINE, "N3_EMULATOR_FIRST_TOKEN_DELAY": "3"},
    )
    body = {"prompt": "hi", "model": MODEL, "max_tokens": 5}
    t0 = time.monotonic()
    r = httpx.post(f"{p.url}/v1/generate/stream", json=body, timeout=30)
    assert time.monotonic() - t0 < 2.5  # cut at 0.3 s, not the emulator's 3 s
    assert r.status_code == 504, r.text  # before the first event: a plain error answer
    error = r.json()["error"]
    assert error["type"] == "upstream_timeout"
    assert "first_token_timeout=0.3s" in error["message"]
    assert "--first-token-timeout" in error["message"]


def test_security_headers_and_cors_off_by_default(server):
    r = httpx.get(f"{server.url}/chains", headers={"origin": "https://evil.example"})
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["cache-control"] == "no-store"
    assert "default-src 'none'" in r.headers["content-security-policy"]
    assert r.headers["x-frame-options"] == "DENY"
    assert "access-control-allow-origin" not in r.headers
    pre = httpx.options(
        f"{server.url}/v1/generate",
        headers={"origin": "https://evil.example", "access-control-request-method": "POST"},
    )
    assert "access-control-allow-origin" not in pre.headers
    for path in ("/nope", "/v1/generate"):
        err = httpx.get(server.url + path)
        assert err.status_code in (404, 405) and err.headers["x-content-type-options"] == "nosniff"
    with httpx.stream(
        "POST", f"{server.url}/v1/generate/stream", json={"prompt": "x", "model": MODEL}
    ) as s:
        assert s.headers["x-content-type-options"] == "nosniff"


def test_cors_when_configured(spawn):
    p = spawn(CHAIN, "--cors-origin", "https://app.example", **OFFLINE)
    pre = httpx.options(
        f"{p.url}/v1/generate",
        headers={
            "origin": "https://app.example",
            "access-control-request-method": "POST",
            "access-control-request-headers": "authorization, content-type",
        },
    )
    assert pre.status_code == 200
    assert pre.headers["access-control-allow-origin"] == "https://app.example"
    r = httpx.get(f"{p.url}/chains", headers={"origin": "https://app.example"})
    assert r.headers["access-control-allow-origin"] == "https://app.example"
    r = httpx.get(f"{p.url}/chains", headers={"origin": "https://evil.example"})
    assert "access-control-allow-origin" not in r.headers


def test_errors_echo_no_prompt_or_secret(server):
    secret = "sk-proj-ABCDEFGHIJKLMNOPQRSTUV"
    bodies = [
        {"prompt": secret, "model": MODEL, "temperature": "hot"},
        {"prompt": secret, "model": secret},
        {"prompt": secret, "model": MODEL, "unknown": secret},
    ]
    for body in bodies:
        r = httpx.post(f"{server.url}/v1/generate", json=body)
        assert 400 <= r.status_code < 500
        assert secret not in r.text and "Traceback" not in r.text
    r = httpx.post(
        f"{server.url}/v1/generate",
        content=b'{"prompt": "' + secret.encode() + b'", oops',
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 422 and secret not in r.text


def test_limits_from_the_environment_and_their_errors(monkeypatch, tmp_path):
    monkeypatch.setenv("N3_SERVE_MAX_BODY_BYTES", "4096")
    monkeypatch.setenv("N3_SERVE_REQUEST_TIMEOUT", "2.5")
    limits = Limits.from_env(max_headers=7)
    assert (limits.max_body_bytes, limits.request_timeout, limits.max_headers) == (4096, 2.5, 7)
    for value in ("lots", "0", "-1"):
        monkeypatch.setenv("N3_SERVE_MAX_BODY_BYTES", value)
        with pytest.raises(ValueError, match="N3_SERVE_MAX_BODY_BYTES"):
            Limits.from_env()
    file = tmp_path / "chains.n3"
    file.write_text(CHAIN, encoding="utf-8")
    r = subprocess.run(
        [sys.executable, "-m", "n3_notebook", "serve", str(file), "--port", "1"],
        cwd=ROOT,
        env=child_env(**OFFLINE, N3_SERVE_HEADER_TIMEOUT="soon"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2 and "N3_SERVE_HEADER_TIMEOUT" in r.stderr
    assert "Traceback" not in r.stderr
