"""TLS trust against a loopback HTTPS server whose certificates a throwaway CA (trustme)
signs: the default trust refuses it, SSL_CERT_FILE / REQUESTS_CA_BUNDLE / SSL_CERT_DIR /
verify= accept it, and each kind of bad certificate gets its own one-paragraph error,
never a retry."""

from __future__ import annotations

import datetime as dt
import shutil
import ssl
import subprocess
import warnings

import pytest
import trustme

from n3_notebook import ConfigurationError, OpenAIProvider, RetryConfig, TLSCertificateError
from n3_notebook.core import tls

from .loopback import openai_handler, server

HOST = "127.0.0.1"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for var in ("SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", tls.NATIVE_TLS_ENV):
        monkeypatch.delenv(var, raising=False)
    for var in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "https_proxy", "http_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.delenv("all_proxy", raising=False)


@pytest.fixture
def ca():
    return trustme.CA()


def server_ctx(ca: trustme.CA, *names: str, **kw) -> ssl.SSLContext:
    """A server context; its `hellos` list counts TLS handshakes begun (a refused one never
    reaches the server's connection handler)."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*(names or (HOST,)), **kw).configure_cert(ctx)
    hellos: list[str | None] = []
    ctx.sni_callback = lambda sock, name, c: hellos.append(name)  # type: ignore[assignment]
    ctx.hellos = hellos  # type: ignore[attr-defined]
    return ctx


def provider(url: str, **kw) -> OpenAIProvider:
    kw.setdefault("retry", RetryConfig(max_attempts=3, base_delay=0.01))
    return OpenAIProvider("m", api_key="sk-test", base_url=url + "/v1", **kw)


async def answer(p: OpenAIProvider) -> str:
    async with p:
        return "".join([c.content async for c in p.stream_generate("hi")])


async def test_default_trust_refuses_an_unknown_ca_once_with_a_clear_error(ca):
    ctx = server_ctx(ca)
    async with server(openai_handler("ok"), ctx) as (url, _):
        with pytest.raises(TLSCertificateError) as info:
            await answer(provider(url))
    text = str(info.value)
    assert "self-signed or signed by a CA this machine does not trust" in text
    assert "SSL_CERT_FILE" in text and "verify=" in text
    assert len(ctx.hellos) == 1  # type: ignore[attr-defined]  # refused once, never retried


@pytest.mark.parametrize("var", ["SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"])
async def test_a_ca_file_from_the_environment_is_trusted(ca, tmp_path, monkeypatch, var):
    pem = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(pem))
    monkeypatch.setenv(var, str(pem))
    async with server(openai_handler("trusted"), server_ctx(ca)) as (url, _):
        assert await answer(provider(url)) == "trusted"


@pytest.fixture
def ca_dir(ca, tmp_path):
    """A c_rehash-style directory holding the CA (the openssl CLI computes the hash)."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl CLI to hash the certificate")
    pem = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(pem))
    digest = subprocess.run(
        ["openssl", "x509", "-hash", "-noout", "-in", str(pem)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    certs = tmp_path / "certs"
    certs.mkdir()
    shutil.copy(pem, certs / f"{digest}.0")
    return certs


async def test_a_ca_directory_from_the_environment_is_trusted(ca, ca_dir, monkeypatch):
    monkeypatch.setenv("SSL_CERT_DIR", str(ca_dir))
    async with server(openai_handler("dir"), server_ctx(ca)) as (url, _):
        assert await answer(provider(url)) == "dir"


async def test_verify_takes_a_path_or_a_context(ca, tmp_path):
    pem = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(pem))
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    async with server(openai_handler("ok"), server_ctx(ca)) as (url, _):
        assert await answer(provider(url, verify=str(pem))) == "ok"
        assert await answer(provider(url, verify=pem)) == "ok"
        assert await answer(provider(url, verify=ctx)) == "ok"


async def test_verify_false_works_with_a_loud_warning(ca):
    async with server(openai_handler("unchecked"), server_ctx(ca)) as (url, _):
        with pytest.warns(UserWarning, match="verification is OFF"):
            p = provider(url, verify=False)
        assert await answer(p) == "unchecked"


async def test_an_expired_certificate_is_named_as_such(ca, tmp_path):
    pem = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(pem))
    past = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    ctx = server_ctx(ca, not_before=past - dt.timedelta(days=30), not_after=past)
    async with server(openai_handler("x"), ctx) as (url, _):
        with pytest.raises(TLSCertificateError, match="has expired") as info:
            await answer(provider(url, verify=str(pem)))
    assert "renew" in str(info.value) and len(ctx.hellos) == 1  # type: ignore[attr-defined]


async def test_a_hostname_the_certificate_does_not_name_is_refused(ca, tmp_path):
    pem = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(pem))
    ctx = server_ctx(ca, "api.example.org")
    async with server(openai_handler("x"), ctx) as (url, _):
        with pytest.raises(TLSCertificateError, match="does not name that host") as info:
            await answer(provider(url, verify=str(pem)))
    assert "127.0.0.1" in str(info.value) and len(ctx.hellos) == 1  # type: ignore[attr-defined]


def test_bad_verify_values_say_what_to_pass(tmp_path):
    with pytest.raises(
        ConfigurationError, match="neither a CA bundle file nor a certificate directory"
    ):
        tls.ssl_context(str(tmp_path / "missing.pem"))
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate")
    with pytest.raises(ConfigurationError, match="cannot load the CA certificates"):
        tls.ssl_context(str(junk))


def test_native_tls_uses_the_os_trust_store(monkeypatch):
    import truststore

    assert isinstance(tls.ssl_context("system"), truststore.SSLContext)
    monkeypatch.setenv(tls.NATIVE_TLS_ENV, "1")
    assert isinstance(tls.ssl_context(True), truststore.SSLContext)
    monkeypatch.delenv(tls.NATIVE_TLS_ENV)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not isinstance(tls.ssl_context(True), truststore.SSLContext)


def test_verify_from_a_setting_text():
    assert tls.verify_from_text("") is True
    assert tls.verify_from_text(" off ") is False and tls.verify_from_text("false") is False
    assert tls.verify_from_text("system") == "system"
    assert tls.verify_from_text("/etc/ca.pem") == "/etc/ca.pem"
