"""Bearer token, Prometheus metrics, keys never leaving the server, provider reuse."""

from __future__ import annotations

import httpx
import pytest

from n3_notebook.chain import Chain
from n3_notebook.serve import create_app
from n3_notebook.serve.background import BackgroundServer

from .conftest import SECRET_KEY, two_step

pytestmark = pytest.mark.timeout(30)
TOKEN = "serve-token-0123456789"
ROUTES = [
    ("GET", "/chains", None),
    ("GET", "/metrics", None),
    ("GET", "/docs", None),
    ("GET", "/openapi.json", None),
    ("POST", "/chains/brief/run", {"topic": "x"}),
    ("POST", "/chains/brief/stream", {"topic": "x"}),
    ("POST", "/chains/nope/run", {}),
    ("POST", "/v1/generate", {"prompt": "x", "model": "openai:gpt-4o-mini", "max_tokens": 2}),
    (
        "POST",
        "/v1/generate/stream",
        {"prompt": "x", "model": "openai:gpt-4o-mini", "max_tokens": 2},
    ),
]


def test_token_required_everywhere_but_healthz(serve):
    server = serve(token=TOKEN)
    for method, path, body in ROUTES:
        for headers in (
            {},
            {"authorization": "Bearer wrong-token-000000"},
            {"authorization": TOKEN},
            {"authorization": f"Basic {TOKEN}"},
        ):
            r = httpx.request(method, server.url + path, json=body, headers=headers)
            assert r.status_code == 401, (path, headers)
            assert r.headers["www-authenticate"] == "Bearer"
            assert r.json()["error"]["type"] == "unauthorized" and TOKEN not in r.text
        r = httpx.request(
            method, server.url + path, json=body, headers={"authorization": f"Bearer {TOKEN}"}
        )
        assert r.status_code in (200, 404), (path, r.status_code)
        assert r.status_code == 404 or "nope" not in path
    assert httpx.get(f"{server.url}/healthz").status_code == 200


def test_token_from_environment_and_off_by_default(serve, monkeypatch):
    open_server = serve()
    assert httpx.get(f"{open_server.url}/chains").status_code == 200
    monkeypatch.setenv("N3_SERVE_TOKEN", TOKEN)
    server = serve(token=None)
    assert httpx.get(f"{server.url}/chains").status_code == 401
    ok = httpx.get(f"{server.url}/chains", headers={"Authorization": f"bearer {TOKEN}"})
    assert ok.status_code == 200


def _metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        head, _, value = line.rpartition(" ")
        metric, _, rest = head.partition("{")
        if metric != name:
            continue
        if all(f'{k}="{v}"' in rest for k, v in labels.items()):
            total += float(value)
    return total


def test_metrics_move_and_never_hold_a_key(serve):
    server = serve()
    before = httpx.get(f"{server.url}/metrics").text
    assert httpx.post(f"{server.url}/chains/brief/run", json={"topic": "m"}).status_code == 200
    with httpx.stream("POST", f"{server.url}/chains/brief/stream", json={"topic": "m"}) as r:
        r.read()
    assert httpx.post(f"{server.url}/chains/brief/run", json={}).status_code == 422
    httpx.post(
        f"{server.url}/v1/generate",
        json={"prompt": "x", "model": "openai:gpt-4o-mini~status_500:9"},
    )
    text = httpx.get(f"{server.url}/metrics").text
    assert _metric(before, "n3_http_requests_total", route="/chains/brief/run") == 0
    assert _metric(text, "n3_http_requests_total", route="/chains/brief/run", status="200") == 1
    assert _metric(text, "n3_http_requests_total", route="/chains/brief/run", status="422") == 1
    assert _metric(text, "n3_http_requests_total", route="/chains/brief/stream", status="200") == 1
    assert _metric(text, "n3_http_requests_total", route="/v1/generate", status="502") == 1
    assert (
        _metric(text, "n3_http_time_to_first_token_seconds_count", route="/chains/brief/stream")
        == 1
    )
    assert _metric(text, "n3_http_request_duration_seconds_count", route="/chains/brief/run") == 2
    assert _metric(text, "n3_upstream_requests_total", provider="openai", outcome="ok") == 4
    assert _metric(text, "n3_upstream_tokens_total", direction="output") == 2 * (12 + 15)
    assert _metric(text, "n3_upstream_time_to_first_token_seconds_count") == 4
    assert _metric(text, "n3_upstream_retries_total") == 1
    assert (
        _metric(
            text,
            "n3_upstream_errors_total",
            provider="openai",
            error_type="ServerError",
            status="500",
        )
        == 1
    )
    assert _metric(text, "n3_http_requests_in_flight") == 1  # this very request
    assert _metric(text, "n3_streams_active") == 0
    assert SECRET_KEY not in text and "sk-" not in text


def test_key_never_in_answers(serve):
    chain = Chain.parse("step a: openai:gpt-4o-mini~invalid_key\n    hi\n", "bad")
    server = serve([chain])
    texts = [
        httpx.post(f"{server.url}/chains/bad/run", json={}).text,
        httpx.post(f"{server.url}/chains/bad/stream", json={}).text,
        httpx.post(
            f"{server.url}/v1/generate",
            json={"prompt": SECRET_KEY, "model": "openai:gpt-4o-mini~invalid_key"},
        ).text,
    ]
    for t in texts:
        assert SECRET_KEY not in t and "Traceback" not in t
    assert '"upstream_status":401' in texts[0]


def test_one_provider_per_model_reused_and_closed_at_shutdown(factory):
    app = create_app([two_step()], provider_factory=factory, token="")
    with BackgroundServer(app) as server:
        for _ in range(3):
            assert httpx.post(f"{server.url}/chains/brief/run", json={"topic": "t"}).is_success
            httpx.post(
                f"{server.url}/v1/generate",
                json={"prompt": "x", "model": "openai:gpt-4o", "max_tokens": 2},
            )
        assert factory.calls == 2 and set(factory.made) == {"openai:gpt-4o-mini", "openai:gpt-4o"}
        assert all(p._client is not None for p in factory.made.values())
    assert all(p._client is None for p in factory.made.values())


def test_default_pool_gives_providers_the_worker_limit(emu, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET_KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", emu.base_url("openai"))
    app = create_app([two_step()], token="", max_concurrent_per_worker=321)
    with BackgroundServer(app) as server:
        r = httpx.post(f"{server.url}/chains/brief/run", json={"topic": "t"})
        assert r.status_code == 200
        pool = app.state.n3.pool
        provider = pool.get("openai:gpt-4o-mini")
        assert provider.max_concurrent == 321 and len(pool) == 1
    assert provider._client is None


def test_startup_errors_are_clear(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ValueError, match="OPENAI_API_KEY is not set"):
        create_app([two_step()])
    with pytest.raises(ValueError, match="names no model"):
        create_app([Chain.parse("step a:\n    hi\n", "x")])
    with pytest.raises(ValueError, match="refers to"):
        create_app([Chain.parse("step a: demo\n    hi {nowhere}\n", "x")])
    with pytest.raises(ValueError, match="URL segment"):
        create_app({"a b": two_step()})
    with pytest.raises(ValueError, match="Unknown model"):
        create_app([Chain.parse("step a: nosuch:thing\n    hi\n", "x")])
    monkeypatch.setenv("N3_OFFLINE", "1")
    app = create_app([Chain.parse("step a:\n    hi\n", "x")])
    assert app.state.n3.models == {"x": {"a": "emulator:demo"}}
