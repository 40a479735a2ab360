"""Who may use the service: refusing to listen beyond loopback without a token, token
files with named tokens, names (never tokens) in the access log and the metrics, and the
per-token concurrency limit. Against the real `python -m n3_notebook serve` process."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from n3_notebook.serve import create_app
from n3_notebook.serve.exposure import InsecureBindError, check_exposure, is_loopback
from n3_notebook.serve.tokens import ApiToken, TokenFileError, collect_tokens, load_token_file

from .conftest import ROOT, ServeProcess, child_env, free_port, two_step, wait_healthy

pytestmark = pytest.mark.timeout(90)
ALICE = "alice-token-0123456789abcdef"
BOB = "bob-token-fedcba9876543210"
OFFLINE = {
    "N3_OFFLINE": "1",
    "N3_EMULATOR_TOKEN_DELAY": "0",
    "N3_EMULATOR_FIRST_TOKEN_DELAY": "0",
}
CHAIN = 'chain hello\ninput who = "world"\nstep a:\n    Say hello to {who}.\n'


def _serve(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    file = tmp_path / "chains.n3"
    file.write_text(CHAIN, encoding="utf-8")
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "n3_notebook",
            "serve",
            str(file),
            "--port",
            str(free_port()),
            *args,
        ],
        cwd=ROOT,
        env=child_env(**OFFLINE, **env),
        capture_output=True,
        text=True,
        timeout=60,
    )


def _token_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tokens"
    path.write_text(text, encoding="utf-8")
    path.chmod(0o600)
    return path


@pytest.mark.parametrize("host", ["0.0.0.0", "::", ""])
def test_listening_beyond_loopback_without_a_token_is_refused(tmp_path, host):
    r = _serve(tmp_path, "--host", host)
    assert r.returncode == 2
    message = r.stderr.strip()
    assert "N3_SERVE_TOKEN" in message and "--token-file" in message
    assert "--insecure-no-auth" in message and "Traceback" not in message
    assert len(message.splitlines()) == 1  # one paragraph


def test_loopback_needs_no_token(spawn):
    p = spawn(CHAIN, "--host", "127.0.0.1", **OFFLINE)
    assert httpx.get(f"{p.url}/chains").status_code == 200


def test_insecure_no_auth_is_allowed_and_logged_at_every_start(tmp_path):
    file = tmp_path / "chains.n3"
    file.write_text(CHAIN, encoding="utf-8")
    for _ in range(2):
        p = ServeProcess(tmp_path, file, "--host", "0.0.0.0", "--insecure-no-auth", **OFFLINE)
        try:
            p.wait_ready()
            assert httpx.get(f"{p.url}/chains").status_code == 200
            assert "WITHOUT authentication" in p.output()
        finally:
            p.close()


def test_a_token_file_opens_every_address_and_names_reach_logs_and_metrics(tmp_path):
    tokens = _token_file(
        tmp_path, f"# who  token\nalice {ALICE} max_concurrent=4\nbob   {BOB}  # the CI\n"
    )
    file = tmp_path / "chains.n3"
    file.write_text(CHAIN, encoding="utf-8")
    p = ServeProcess(
        tmp_path,
        file,
        "--host",
        "0.0.0.0",
        "--token-file",
        str(tokens),
        "--log-level",
        "info",
        **OFFLINE,
    )
    try:
        p.wait_ready()
        url = p.url
        assert httpx.get(f"{url}/chains").status_code == 401
        assert (
            httpx.get(f"{url}/chains", headers={"authorization": "Bearer alice"}).status_code == 401
        )
        for token in (ALICE, BOB, BOB):
            r = httpx.post(
                f"{url}/chains/hello/run",
                json={"who": "x"},
                headers={"authorization": f"Bearer {token}"},
            )
            assert r.status_code == 200
        metrics = httpx.get(f"{url}/metrics", headers={"authorization": f"Bearer {ALICE}"}).text
        assert 'n3_http_requests_by_token_total{status="200",token="bob"} 2.0' in metrics
        assert 'token="alice"' in metrics
        time.sleep(0.3)
        log = p.output()
        assert '"POST /chains/hello/run" 200 token=bob' in log
        assert '"GET /chains" 401 token=-' in log
        for secret in (ALICE, BOB):
            assert secret not in log and secret not in metrics
    finally:
        p.close()


def test_each_token_has_its_own_concurrency_limit(tmp_path):
    tokens = _token_file(tmp_path, f"alice {ALICE} max_concurrent=1\nbob {BOB}\n")
    file = tmp_path / "chains.n3"
    file.write_text(CHAIN, encoding="utf-8")
    env = {**OFFLINE, "N3_EMULATOR_TOKEN_DELAY": "0.2"}
    p = ServeProcess(tmp_path, file, "--token-file", str(tokens), **env)
    try:
        p.wait_ready()
        started = threading.Event()
        done: list[int] = []

        def slow_stream() -> None:
            with httpx.stream(
                "POST",
                f"{p.url}/v1/generate/stream",
                json={"prompt": "x", "model": "openai:gpt-4o-mini", "max_tokens": 15},
                headers={"authorization": f"Bearer {ALICE}"},
                timeout=30,
            ) as r:
                started.set()
                r.read()
                done.append(r.status_code)

        t = threading.Thread(target=slow_stream)
        t.start()
        assert started.wait(15)
        busy = httpx.get(f"{p.url}/chains", headers={"authorization": f"Bearer {ALICE}"})
        assert busy.status_code == 429 and busy.headers["retry-after"] == "1"
        assert busy.json()["error"]["type"] == "too_many_requests" and ALICE not in busy.text
        other = httpx.get(f"{p.url}/chains", headers={"authorization": f"Bearer {BOB}"})
        assert other.status_code == 200
        t.join(30)
        assert done == [200]
        again = httpx.get(f"{p.url}/chains", headers={"authorization": f"Bearer {ALICE}"})
        assert again.status_code == 200
    finally:
        p.close()


def test_a_bad_token_file_is_a_clear_error_without_the_token(tmp_path):
    tokens = _token_file(tmp_path, f"alice {ALICE} max_concurrent=lots\n")
    r = _serve(tmp_path, "--token-file", str(tokens))
    assert r.returncode == 2 and "line 1" in r.stderr and ALICE not in r.stderr
    r = _serve(tmp_path, "--token-file", str(tmp_path / "missing"))
    assert r.returncode == 2 and "cannot read the token file" in r.stderr


def test_token_file_format(tmp_path):
    path = _token_file(tmp_path, f"\n# c\n{ALICE}\n")
    assert load_token_file(path) == [ApiToken("default", ALICE)]
    path = _token_file(tmp_path, f"a {ALICE} max_concurrent=3\nb {BOB}\n")
    assert load_token_file(path) == [ApiToken("a", ALICE, 3), ApiToken("b", BOB)]
    assert ALICE not in repr(load_token_file(path))
    for bad in (f"a {ALICE}\na {BOB}\n", f"a {ALICE}\nb {ALICE}\n"):
        with pytest.raises(ValueError) as info:
            collect_tokens(None, None, _token_file(tmp_path, bad))
        assert ALICE not in str(info.value)
    for bad in ("# nothing\n", f"bad/name {ALICE}\n", f"a {ALICE} colour=blue\n"):
        with pytest.raises(TokenFileError):
            load_token_file(_token_file(tmp_path, bad))


def test_tokens_given_to_create_app(serve):
    server = serve(tokens={"alice": ALICE, "bob": BOB})
    assert httpx.get(f"{server.url}/chains").status_code == 401
    for token in (ALICE, BOB):
        r = httpx.get(f"{server.url}/chains", headers={"authorization": f"Bearer {token}"})
        assert r.status_code == 200
    app = create_app([two_step()], provider_factory=lambda s: None, token="", tokens=[])  # type: ignore[arg-type,return-value]
    assert app.state.n3.token_names == ()


def test_loopback_detection():
    for host in ("127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost", "unix:/tmp/n3.sock"):
        assert is_loopback(host), host
    for host in ("0.0.0.0", "::", "", "192.0.2.10", "10.0.0.1"):
        assert not is_loopback(host), host
    check_exposure("127.0.0.1", False, False)
    check_exposure("0.0.0.0", True, False)
    check_exposure("0.0.0.0", False, True)
    with pytest.raises(InsecureBindError):
        check_exposure("0.0.0.0", False, False)


def test_gunicorn_config_refuses_an_open_public_bind(tmp_path):
    pytest.importorskip("gunicorn")
    port = free_port()
    env = child_env(
        N3_SERVE_FILE=str(ROOT / "deploy" / "example.n3"),
        N3_BIND=f"0.0.0.0:{port}",
        N3_WORKERS="1",
        **OFFLINE,
    )
    cmd = [
        sys.executable,
        "-m",
        "gunicorn",
        "-c",
        str(ROOT / "deploy" / "gunicorn.conf.py"),
        "n3_notebook.serve.app:app_from_env()",
    ]
    r = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "N3_SERVE_TOKEN" in r.stdout + r.stderr
    tokens = _token_file(tmp_path, f"alice {ALICE}\n")
    env["N3_SERVE_TOKEN_FILE"] = str(tokens)
    env["N3_BIND"] = f"127.0.0.1:{port}"
    proc = subprocess.Popen(
        cmd, env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_healthy(f"http://127.0.0.1:{port}", proc, lambda: "", timeout=60)
        url = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{url}/chains").status_code == 401
        ok = httpx.get(f"{url}/chains", headers={"authorization": f"Bearer {ALICE}"})
        assert ok.status_code == 200 and ok.headers["x-content-type-options"] == "nosniff"
    finally:
        proc.terminate()
        proc.wait(30)


def test_a_refused_body_leaves_the_kept_alive_connection_usable(spawn, tmp_path):
    tokens = _token_file(tmp_path, f"alice {ALICE}\n")
    p = spawn(CHAIN, "--token-file", str(tokens), **OFFLINE)
    host, port = p.url.removeprefix("http://").split(":")
    body = b'{"who": "' + b"w" * 60000 + b'"}'
    with socket.create_connection((host, int(port)), timeout=20) as sock:
        for auth, status in (
            (b"", b"401"),
            (b"authorization: Bearer " + ALICE.encode() + b"\r\n", b"200"),
        ):
            sock.sendall(
                b"POST /chains/hello/run HTTP/1.1\r\nhost: t\r\ncontent-type: application/json\r\n"
                + auth
                + b"content-length: %d\r\n\r\n" % len(body)
                + body
            )
            answer = b""
            while b"\r\n\r\n" not in answer:
                answer += sock.recv(65536)
            head, _, rest = answer.partition(b"\r\n\r\n")
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            while len(rest) < length:
                rest += sock.recv(65536)
            assert head.split(b" ")[1] == status, head
