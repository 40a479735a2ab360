"""Idle and slow clients against the real server process: 2,000 connections that send
nothing do not keep real clients waiting and are closed after the header timeout; a
client dripping its headers, or its body, is cut off with 408."""

from __future__ import annotations

import resource
import selectors
import socket
import time

import httpx
import pytest

pytestmark = pytest.mark.timeout(120)
OFFLINE = {
    "N3_OFFLINE": "1",
    "N3_EMULATOR_TOKEN_DELAY": "0",
    "N3_EMULATOR_FIRST_TOKEN_DELAY": "0",
}
CHAIN = 'chain hello\ninput who = "world"\nstep a:\n    Say hello to {who}.\n'
HALF_OPEN = 2000
HEADER_TIMEOUT = 3.0


def _address(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").split(":")
    return host, int(port)


@pytest.fixture
def slow_server(spawn):
    return spawn(
        CHAIN,
        **OFFLINE,
        N3_SERVE_HEADER_TIMEOUT=str(HEADER_TIMEOUT),
        N3_SERVE_BODY_TIMEOUT=str(HEADER_TIMEOUT),
        N3_SERVE_KEEPALIVE_TIMEOUT="2",
    )


@pytest.fixture
def enough_files():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = HALF_OPEN + 500
    if hard != resource.RLIM_INFINITY and hard < need:
        pytest.skip(f"needs {need} open files, the hard limit is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, need), hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_half_open_connections_do_not_starve_real_clients(slow_server, enough_files):
    address = _address(slow_server.url)
    idle: list[socket.socket] = []
    try:
        for _ in range(HALF_OPEN):
            idle.append(socket.create_connection(address, timeout=10))
        opened = time.monotonic()
        # real clients, each on a new connection, are served at once
        for i in range(5):
            t0 = time.monotonic()
            r = httpx.post(f"{slow_server.url}/chains/hello/run", json={"who": str(i)}, timeout=10)
            assert r.status_code == 200
            assert time.monotonic() - t0 < 2.0
        # and the idle ones are closed by the server once the header timeout passes
        sel = selectors.DefaultSelector()
        for s in idle:
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ)
        closed = 0
        deadline = opened + HEADER_TIMEOUT + 20
        while closed < HALF_OPEN and time.monotonic() < deadline:
            for key, _ in sel.select(timeout=1):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                try:
                    data = sock.recv(1024)
                except ConnectionError:
                    data = b""
                assert data == b""  # closed without an answer: it never asked anything
                sel.unregister(sock)
                closed += 1
        took = time.monotonic() - opened
        assert closed == HALF_OPEN, f"{HALF_OPEN - closed} idle connections still open"
        assert took >= HEADER_TIMEOUT - 1.5
        sel.close()
    finally:
        for s in idle:
            s.close()
    assert httpx.get(f"{slow_server.url}/healthz").status_code == 200


def test_a_client_dripping_its_headers_gets_408(slow_server):
    sock = socket.create_connection(_address(slow_server.url), timeout=30)
    t0 = time.monotonic()
    sock.sendall(b"GET /chains HTTP/1.1\r\nhost: t\r\n")
    answer = b""
    try:
        for i in range(100):  # a header every 0.25 s: for ever, unless cut off
            sock.sendall(b"x-drip-%d: v\r\n" % i)
            sock.settimeout(0.25)
            try:
                answer += sock.recv(4096)
            except TimeoutError:
                continue
            if answer:
                break
    except OSError:
        pass
    sock.settimeout(5)
    try:
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
    except OSError:
        pass
    took = time.monotonic() - t0
    sock.close()
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    assert HEADER_TIMEOUT - 0.5 <= took < HEADER_TIMEOUT + 5


def test_a_client_dripping_its_body_gets_408(slow_server):
    sock = socket.create_connection(_address(slow_server.url), timeout=30)
    t0 = time.monotonic()
    sock.sendall(
        b"POST /chains/hello/run HTTP/1.1\r\nhost: t\r\ncontent-type: application/json\r\n"
        b"content-length: 200\r\n\r\n{"
    )
    sock.settimeout(HEADER_TIMEOUT + 10)
    answer = b""
    while b"\r\n\r\n" not in answer:
        chunk = sock.recv(4096)
        if not chunk:
            break
        answer += chunk
    took = time.monotonic() - t0
    sock.close()
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    assert b'"request_timeout"' in answer or b"connection: close" in answer.lower()
    assert took < HEADER_TIMEOUT + 5


def test_a_kept_alive_idle_connection_is_closed(slow_server):
    sock = socket.create_connection(_address(slow_server.url), timeout=30)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nhost: t\r\n\r\n")
    answer = b""
    while not answer.endswith(b"}"):  # the head, then the JSON body
        answer += sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 200 ")
    t0 = time.monotonic()
    sock.settimeout(20)
    rest = sock.recv(4096)  # nothing more to say: the server closes after keep-alive
    assert rest == b""
    assert time.monotonic() - t0 < 6
    sock.close()
