"""The doctor against the emulator (green), a refused port, a wrong key, a TLS server with
a throwaway CA (trustme), a CONNECT proxy, a silent server (timeout), and its saved report,
which never holds a key."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import trustme

from n3_notebook.core.catalog import clear_model_cache
from n3_notebook.core.offline import set_offline
from n3_notebook.doctor import DoctorReport, Probe, ProviderCheck, run_doctor
from n3_notebook.doctor.cli import main as doctor_main
from n3_notebook.doctor.probes import probe_tls, proxy_for, tls_context
from n3_notebook.doctor.report import COLUMNS
from n3_notebook.emulator import EMULATOR_MODELS, Emulator, run_emulator

PROVIDERS = ("openai", "anthropic", "gemini", "cohere", "ollama")
KEY_VARS = {
    "openai": "OPENAI_API_KEY",
    "anthropic": "ANTHROPIC_API_KEY",
    "gemini": "GEMINI_API_KEY",
    "cohere": "CO_API_KEY",
}
URL_VARS = {
    "openai": "OPENAI_BASE_URL",
    "anthropic": "ANTHROPIC_BASE_URL",
    "gemini": "GEMINI_BASE_URL",
    "cohere": "CO_API_URL",
    "ollama": "OLLAMA_HOST",
}
ENV = [
    *KEY_VARS.values(),
    *URL_VARS.values(),
    "GOOGLE_API_KEY",
    "GOOGLE_GEMINI_BASE_URL",
    "COHERE_API_KEY",
    "COHERE_BASE_URL",
    "OLLAMA_API_KEY",
    "N3_OFFLINE",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    *(f"{v}_PROXY" for v in ("HTTPS", "HTTP", "ALL", "NO")),
    *(f"{v}_proxy" for v in ("https", "http", "all", "no")),
]
SECRET = "sk-proj-DoctorSecretKey0123456789abcdef"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    set_offline(None)
    clear_model_cache()
    yield
    set_offline(None)


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with run_emulator(token_delay=0, first_token_delay=0, api_keys={"openai": SECRET}) as e:
        yield e


def point_at(monkeypatch: pytest.MonkeyPatch, emu: Emulator, *providers: str) -> None:
    for name in providers:
        monkeypatch.setenv(URL_VARS[name], emu.base_url(name))
        if name in KEY_VARS:
            monkeypatch.setenv(KEY_VARS[name], SECRET)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_every_provider_green_against_the_emulator(monkeypatch, emu) -> None:
    point_at(monkeypatch, emu, *PROVIDERS)
    report = await run_doctor(timeout=20)
    assert report.ok and report.exit_code == 0
    by_name = {c.provider: c for c in report.checks}
    for name in PROVIDERS:
        check = by_name[name]
        assert check.ok is True, check.as_dict()
        assert check.models_status == 200
        assert check.models_count == len(EMULATOR_MODELS[name])
        assert check.default_available is True
        assert check.dns.ok and check.tcp.ok and check.tls.ok is None  # plain HTTP
        assert check.clock_skew is not None and abs(check.clock_skew) < 5
    assert by_name["openai"].key == f"OPENAI_API_KEY (set, {len(SECRET)} chars)"
    text = report.to_text()
    assert "Working: openai, anthropic, gemini, cohere, ollama" in text
    assert SECRET not in text


async def test_a_refused_port_fails_with_a_next_step(monkeypatch) -> None:
    port = free_port()
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{port}/v1")
    report = await run_doctor(["openai"], timeout=10)
    check = report.checks[0]
    assert check.tcp.failed and "refused" in check.tcp.detail
    assert check.models.ok is None  # never reached
    assert any(
        "Nothing accepts connections" in s and "OPENAI_BASE_URL" in s for s in check.next_steps
    )
    assert report.exit_code == 1  # a provider with a key failed


def test_cli_exit_status(monkeypatch, capsys) -> None:
    monkeypatch.setenv("OLLAMA_HOST", f"127.0.0.1:{free_port()}")
    # Ollama needs no key: a configured but stopped server is a failure...
    assert doctor_main(["ollama", "--timeout", "10"]) == 1
    out = capsys.readouterr().out
    assert "ollama serve" in out and "FAIL" in out
    # ...and an unconfigured provider is not (nothing to check without a key)
    monkeypatch.delenv("OLLAMA_HOST")
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{free_port()}/v1")
    assert doctor_main(["openai", "--json"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["providers"][0]["key"] == "not set (OPENAI_API_KEY)"


async def test_a_wrong_key_is_named_and_never_shown(monkeypatch, emu, tmp_path: Path) -> None:
    wrong = "sk-proj-WrongKeyWrongKey0123456789zz"
    monkeypatch.setenv("OPENAI_API_KEY", wrong)
    monkeypatch.setenv("OPENAI_BASE_URL", emu.base_url("openai"))
    report = await run_doctor(["openai"], timeout=10)
    check = report.checks[0]
    assert check.models_status == 401 and check.models.failed
    assert any("refused the key in OPENAI_API_KEY" in s for s in check.next_steps)
    assert report.exit_code == 1
    saved = [report.save(tmp_path / f"doctor.{ext}") for ext in ("json", "html", "txt")]
    for path in saved:
        text = path.read_text()
        assert "OPENAI_API_KEY" in text
        assert wrong not in text and wrong[-12:] not in text
    for rendering in (report.to_text(), report.to_html(), report.to_json(), repr(report)):
        assert wrong not in rendering


# -- TLS with a throwaway CA --------------------------------------------------------------


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


async def serve_tls(ca: trustme.CA, hello: bytes = b"") -> tuple[asyncio.Server, int]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await reader.read(1024)
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context)
    return server, server.sockets[0].getsockname()[1]


@pytest.fixture
async def tls_server(ca: trustme.CA) -> AsyncIterator[int]:
    server, port = await serve_tls(ca)
    async with server:
        yield port


async def test_tls_probe_names_the_issuer_of_a_custom_ca(ca, tls_server, tmp_path) -> None:
    cafile = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(cafile))
    probe = await probe_tls("localhost", tls_server, tls_context(str(cafile)))
    assert probe.ok is True, probe.detail
    assert probe.issuer and "trustme" in probe.issuer
    assert probe.expires and probe.ms is not None
    # without the CA the same server is refused, and the issuer it showed is named
    refused = await probe_tls("localhost", tls_server, tls_context())
    assert refused.failed and "not trusted" in refused.detail
    assert refused.issuer and "trustme" in refused.issuer


async def test_doctor_trusts_ssl_cert_file(monkeypatch, ca, tls_server, tmp_path) -> None:
    cafile = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(cafile))
    monkeypatch.setenv("OPENAI_BASE_URL", f"https://localhost:{tls_server}/v1")
    untrusted = (await run_doctor(["openai"], timeout=10)).checks[0]
    assert untrusted.tls.failed
    assert any("SSL_CERT_FILE" in s and "trustme" in s for s in untrusted.next_steps)
    monkeypatch.setenv("SSL_CERT_FILE", str(cafile))
    trusted = (await run_doctor(["openai"], timeout=10)).checks[0]
    assert trusted.tls.ok is True and "trustme" in (trusted.tls.issuer or "")
    assert "issuer" in trusted.cells()["TLS"]


# -- proxies ------------------------------------------------------------------------------


def test_proxy_choice_and_no_proxy(monkeypatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    assert proxy_for("https://api.openai.com/v1") == ("http://proxy.example:3128", False)
    assert proxy_for("http://127.0.0.1:11434") == (None, False)  # no HTTP_PROXY
    monkeypatch.setenv("NO_PROXY", "api.openai.com,localhost")
    assert proxy_for("https://api.openai.com/v1") == ("http://proxy.example:3128", True)


async def connect_proxy() -> tuple[asyncio.Server, int, list[str]]:
    """A minimal HTTP CONNECT proxy that records what it was asked to reach."""
    asked: list[str] = []

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        target = head.split(b" ")[1].decode()
        asked.append(target)
        if b"Proxy-Authorization: Basic dXNlcjpwQHNz" not in head:  # user:p@ss
            writer.write(b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n")
            writer.close()
            return
        port = target.rpartition(":")[2]
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", int(port))
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1], asked


async def test_tls_through_a_connect_proxy(monkeypatch, ca, tls_server, tmp_path) -> None:
    server, port, asked = await connect_proxy()
    cafile = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(cafile))
    async with server:
        monkeypatch.setenv("HTTPS_PROXY", f"http://user:p%40ss@127.0.0.1:{port}")
        monkeypatch.setenv("OPENAI_BASE_URL", f"https://localhost:{tls_server}/v1")
        report = await run_doctor(["openai"], timeout=10, verify=str(cafile))
        monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{port}")  # no credentials
        refused = (await run_doctor(["openai"], timeout=10, verify=str(cafile))).checks[0]
    assert refused.tls.failed and "407" in refused.tls.detail
    assert any("HTTPS_PROXY" in s for s in refused.next_steps)
    check = report.checks[0]
    assert check.proxy == f"http://***@127.0.0.1:{port}"  # credentials masked
    assert check.tcp.detail == f"127.0.0.1:{port}"  # the hop is the proxy
    assert check.tls.ok is True and "trustme" in (check.tls.issuer or "")
    assert asked == [f"localhost:{tls_server}"] * 2


async def test_a_silent_server_times_out_at_the_step_it_reached(monkeypatch) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(30)

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        monkeypatch.setenv("OPENAI_API_KEY", SECRET)
        monkeypatch.setenv("OPENAI_BASE_URL", f"https://localhost:{port}/v1")
        report: DoctorReport = await run_doctor(["openai"], timeout=1.0)
    check = report.checks[0]
    assert check.timed_out and check.tls.failed and "within 1 s" in check.tls.detail
    assert any("TLS step took longer" in s for s in check.next_steps)
    assert report.exit_code == 1


def test_renderings_share_one_table() -> None:
    good = ProviderCheck("openai", key="OPENAI_API_KEY (set, 40 chars)", configured=True)
    good.dns = good.tcp = Probe(True, "127.0.0.1", 1.0)
    good.models, good.default_model, good.default_available = Probe(True, "HTTP 200"), "m", True
    bad = ProviderCheck("gemini", configured=True)
    bad.dns = Probe(False, "cannot resolve example.invalid")
    bad.step("Check the host name.")
    report = DoctorReport([good, bad], timeout=5)
    assert not report.ok and report.exit_code == 1
    frame = report.to_pandas()
    assert list(frame.columns) == [*COLUMNS, "next steps"]
    assert list(frame["status"]) == ["ok", "FAIL"]
    assert frame["next steps"][1] == "Check the host name."
    html = report._repr_html_()
    assert html.count("<tr") == 3 and "Check the host name." in html
    assert "m (available)" in report.to_text()


def test_the_doctor_imports_no_notebook_stack() -> None:
    code = (
        "import sys, n3_notebook.doctor, n3_notebook.providers.available\n"
        "print(sorted(m for m in ('IPython', 'ipywidgets', 'traitlets', 'ipykernel') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
