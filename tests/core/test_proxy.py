"""Proxies from the environment, through a CONNECT / absolute-form proxy the test runs on
loopback: HTTPS_PROXY (with credentials) tunnels TLS, HTTP_PROXY forwards, ALL_PROXY is
the fallback, NO_PROXY (hosts, suffixes, IPs, networks) goes direct."""

from __future__ import annotations

import base64
import ssl

import pytest
import trustme

from n3_notebook import APIConnectionError, ConfigurationError, OpenAIProvider, RetryConfig
from n3_notebook.core.proxy import ProxyConfig

from .loopback import Proxy, openai_handler, server

VARS = ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for var in VARS:
        monkeypatch.delenv(var, raising=False)
        monkeypatch.delenv(var.lower(), raising=False)


def provider(url: str, **kw) -> OpenAIProvider:
    return OpenAIProvider(
        "m", api_key="sk-test", base_url=url + "/v1", retry=RetryConfig(max_attempts=1), **kw
    )


async def answer(p: OpenAIProvider) -> str:
    async with p:
        return "".join([c.content async for c in p.stream_generate("hi")])


def with_credentials(proxy_url: str, user: str, password: str) -> str:
    return proxy_url.replace("://", f"://{user}:{password}@", 1)


async def test_https_proxy_with_credentials_tunnels_tls(monkeypatch, tmp_path):
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    pem = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(pem))
    expected = "Basic " + base64.b64encode(b"alice:s3cr%t").decode()
    seen: list[bytes] = []
    async with (
        server(openai_handler("through", "tunnel", seen=seen), server_ctx) as (url, _),
        Proxy(require=expected) as proxy,
    ):
        monkeypatch.setenv("HTTPS_PROXY", with_credentials(proxy.url, "alice", "s3cr%25t"))
        assert await answer(provider(url, verify=str(pem))) == "throughtunnel"
    port = url.rsplit(":", 1)[1]
    assert proxy.seen == [{"method": "CONNECT", "target": f"127.0.0.1:{port}", "auth": expected}]
    assert seen and b"proxy-authorization" not in seen[0].lower()  # never sent on to the API


async def test_http_proxy_forwards_plain_http(monkeypatch):
    async with server(openai_handler("plain")) as (url, _), Proxy() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")  # not for http:// URLs
        assert await answer(provider(url)) == "plain"
    assert [(s["method"], s["target"]) for s in proxy.seen] == [
        ("POST", url + "/v1/chat/completions")
    ]


async def test_all_proxy_is_the_fallback(monkeypatch):
    async with server(openai_handler("all")) as (url, _), Proxy() as proxy:
        monkeypatch.setenv("ALL_PROXY", proxy.url)
        assert await answer(provider(url)) == "all"
    assert len(proxy.seen) == 1


@pytest.mark.parametrize("no_proxy", ["127.0.0.1", "localhost,127.0.0.0/8", "*"])
async def test_no_proxy_goes_direct(monkeypatch, no_proxy):
    async with server(openai_handler("direct")) as (url, _), Proxy() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.setenv("NO_PROXY", no_proxy)
        assert await answer(provider(url)) == "direct"
    assert proxy.seen == []


async def test_a_proxy_that_refuses_is_a_clear_connection_error(monkeypatch):
    async with server(openai_handler("x")) as (url, _), Proxy(require="Basic nope") as proxy:
        monkeypatch.setenv("ALL_PROXY", proxy.url)
        with pytest.raises(APIConnectionError, match="407"):
            await answer(provider(url.replace("http:", "https:")))


def test_no_proxy_rules():
    cfg = ProxyConfig(
        {
            "https_proxy": "http://user:pw@proxy.corp:3128",
            "no_proxy": "internal.corp, .svc.local,10.0.0.0/8,192.168.1.7,[::1]",
        }
    )
    proxied = cfg.for_url("https", "api.openai.com")
    assert proxied is not None and proxied.url == "http://proxy.corp:3128"
    assert "pw" not in repr(proxied)
    for host in ("internal.corp", "a.internal.corp", "x.svc.local", "10.2.3.4", "192.168.1.7"):
        assert cfg.for_url("https", host) is None, host
    assert cfg.for_url("https", "::1") is None
    for host in ("svc.local", "notinternal.corp", "192.168.1.8", "11.0.0.1"):
        assert cfg.for_url("https", host) is not None, host
    assert cfg.for_url("http", "example.com") is None  # no proxy for http:// configured


def test_lower_case_wins_and_bad_schemes_say_what_to_do():
    cfg = ProxyConfig({"HTTPS_PROXY": "http://upper:1", "https_proxy": "http://lower:2"})
    got = cfg.for_url("https", "x.org")
    assert got is not None and got.url == "http://lower:2"
    with pytest.raises(ConfigurationError, match="SOCKS proxies are not supported") as info:
        ProxyConfig({"ALL_PROXY": "socks5://bob:hunter2@proxy:1080"})
    assert "hunter2" not in str(info.value)
