"""Provider behaviour that does not depend on the wire format: concurrency, ownership of
the client, the sync facade, cancellation, registry, metrics, Ollama's extra routes."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from n3_notebook import (
    MissingAPIKeyError,
    OllamaProvider,
    OpenAIProvider,
    StreamConfig,
    UnknownModelError,
    create_provider,
)
from n3_notebook.core import registry

from .conftest import FAKE_KEYS, Recorder, json_response, make_provider, streaming
from .wire_samples import SAMPLES, TEXT, ndjson


class TrackedBody:
    """An async body that records whether httpx closed it."""

    def __init__(self, parts, delay=0.0, hang=False):
        self.parts, self.delay, self.hang = parts, delay, hang
        self.closed = False
        self.sent = 0

    async def __aiter__(self):
        try:
            for p in self.parts:
                await asyncio.sleep(self.delay)
                self.sent += 1
                yield p
            if self.hang:
                await asyncio.sleep(60)
        finally:
            self.closed = True

    async def aclose(self):
        self.closed = True


def test_stream_config_defaults():
    cfg = StreamConfig()
    assert (cfg.stream_timeout, cfg.chunk_timeout, cfg.max_chunks, cfg.buffer_size) == (
        None,
        120.0,
        None,
        100,
    )


async def test_concurrent_agenerate_overlaps_in_time():
    s = SAMPLES["openai"]

    async def slow(request):
        await asyncio.sleep(0.2)
        return httpx.Response(200, json=s.whole)

    client = httpx.AsyncClient(transport=httpx.MockTransport(slow))
    p = OpenAIProvider(
        "gpt-4o-mini", api_key=FAKE_KEYS["openai"], base_url="http://x", http_client=client
    )
    t = time.perf_counter()
    results = await asyncio.gather(*(p.agenerate(f"q{i}") for i in range(5)))
    elapsed = time.perf_counter() - t
    assert all(r.content == TEXT for r in results)
    assert elapsed < 0.6  # five 0.2 s requests overlapped, not 1.0 s in a row


async def test_semaphore_bounds_concurrency():
    s = SAMPLES["openai"]
    live = 0
    peak = 0

    async def handler(request):
        nonlocal live, peak
        live += 1
        peak = max(peak, live)
        await asyncio.sleep(0.02)
        live -= 1
        return httpx.Response(200, json=s.whole)

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    p = OpenAIProvider(
        "gpt-4o-mini", api_key=FAKE_KEYS["openai"], base_url="http://x", http_client=client
    )
    assert p.max_concurrent == 10
    await asyncio.gather(*(p.agenerate("q") for i in range(30)))
    assert peak == 10
    p3 = OpenAIProvider(
        "gpt-4o-mini",
        api_key=FAKE_KEYS["openai"],
        base_url="http://x",
        http_client=client,
        max_concurrent=3,
    )
    peak = 0
    await asyncio.gather(*(p3.agenerate("q") for i in range(12)))
    assert peak == 3


async def test_tokens_arrive_progressively():
    s = SAMPLES["openai"]
    body = TrackedBody(s.stream_parts, delay=0.03)
    client = httpx.AsyncClient(
        transport=httpx.MockTransport(
            lambda r: httpx.Response(
                200, headers={"content-type": "text/event-stream"}, content=body
            )
        )
    )
    p = OpenAIProvider(
        "gpt-4o-mini", api_key=FAKE_KEYS["openai"], base_url="http://x", http_client=client
    )
    stamps = []
    async for c in p.stream_generate("x"):
        if c.content:
            stamps.append(time.perf_counter())
    assert len(stamps) == 5
    assert stamps[-1] - stamps[0] > 0.08  # spread over time, not buffered to the end


async def test_leaving_loop_early_closes_response():
    s = SAMPLES["openai"]
    body = TrackedBody(s.stream_parts, hang=True)
    responses: list[httpx.Response] = []

    async def keep(response):
        responses.append(response)

    client = httpx.AsyncClient(
        transport=httpx.MockTransport(
            lambda r: httpx.Response(
                200, headers={"content-type": "text/event-stream"}, content=body
            )
        ),
        event_hooks={"response": [keep]},
    )
    p = OpenAIProvider(
        "gpt-4o-mini", api_key=FAKE_KEYS["openai"], base_url="http://x", http_client=client
    )
    stream = p.stream_generate("x")
    async for c in stream:
        if c.content:
            break
    assert not responses[0].is_closed
    await stream.aclose()
    assert responses[0].is_closed  # (the live-server tests show the socket closing too)


async def test_cancelling_consumer_closes_response_and_reraises():
    s = SAMPLES["openai"]
    body = TrackedBody(s.stream_parts[:3], hang=True)
    client = httpx.AsyncClient(
        transport=httpx.MockTransport(
            lambda r: httpx.Response(
                200, headers={"content-type": "text/event-stream"}, content=body
            )
        )
    )
    seen = []
    p = OpenAIProvider(
        "gpt-4o-mini",
        api_key=FAKE_KEYS["openai"],
        base_url="http://x",
        http_client=client,
        on_metrics=seen.append,
    )

    async def consume():
        async for _ in p.stream_generate("x", stream_config=StreamConfig(chunk_timeout=None)):
            pass

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert body.closed
    assert seen[-1].outcome == "cancelled"


async def test_context_manager_closes_own_client_only():
    async with OpenAIProvider("gpt-4o-mini", api_key="sk-x-123456789", base_url="http://x") as p:
        own = p.client
    assert own.is_closed
    borrowed = httpx.AsyncClient()
    async with OpenAIProvider(
        "gpt-4o-mini", api_key="sk-x-123456789", base_url="http://x", http_client=borrowed
    ) as p:
        assert p.client is borrowed
    assert not borrowed.is_closed
    await borrowed.aclose()


def _serve_once(payload: dict) -> tuple[str, object]:
    """A real loopback HTTP server answering every POST with payload (for the sync facade)."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class H(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers.get("content-length", 0)))
            data = json.dumps(payload).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *a):
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{srv.server_address[1]}", srv


def test_sync_facade_outside_loop():
    url, srv = _serve_once(SAMPLES["openai"].whole)
    try:
        p = OpenAIProvider("gpt-4o-mini", api_key="sk-x-123456789", base_url=url)
        assert p.generate("hi").content == TEXT
    finally:
        srv.shutdown()


async def test_sync_facade_inside_running_loop():
    """Like a Jupyter cell: generate() called while this loop runs does not nest it."""
    url, srv = _serve_once(SAMPLES["anthropic"].whole)
    try:
        p = create_provider(
            "anthropic:claude-3-5-haiku-latest", api_key="sk-ant-x-123456789", base_url=url
        )
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                await asyncio.sleep(0.001)
                ticks += 1

        t = asyncio.create_task(ticker())
        r = p.chat([{"role": "user", "content": "hi"}])
        t.cancel()
        assert r.content == TEXT and r.finish_reason == "stop"
    finally:
        srv.shutdown()


def test_missing_key_names_env_var(monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("N3_OFFLINE", raising=False)
    with pytest.raises(MissingAPIKeyError) as info:
        create_provider("anthropic:claude-3-5-haiku-latest")
    msg = str(info.value)
    assert "ANTHROPIC_API_KEY" in msg and "offline" in msg


def test_key_from_env_and_never_in_repr(monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", "AIzaSECRETgeminiKEY1234567890abc")
    p = create_provider("gemini:gemini-2.0-flash")
    assert p.api_key_set
    assert "AIzaSECRET" not in repr(p)


def test_registry_resolution_and_errors():
    assert registry.resolve_model("openai:gpt-4o-mini") == ("openai", "gpt-4o-mini")
    assert registry.resolve_model("haiku") == ("anthropic", "claude-haiku-5-5")
    assert registry.resolve_model("gemini:fast") == ("gemini", "gemini-3.5-flash-lite")
    assert registry.resolve_model("openai:reasoning") == ("openai", "gpt-6.2-astra")
    assert registry.resolve_model("claude-3-5-sonnet-latest")[0] == "anthropic"
    assert registry.resolve_model("google:gemini-2.0-flash") == ("gemini", "gemini-2.0-flash")
    assert registry.resolve_model("ollama:llama3:8b") == ("ollama", "llama3:8b")
    with pytest.raises(UnknownModelError) as info:
        registry.resolve_model("nosuch:thing")
    assert "openai" in str(info.value) and "haiku" in str(info.value)
    with pytest.raises(UnknownModelError):
        registry.resolve_model("mystery-model")


def test_aliases_and_custom_provider():
    registry.set_alias("mine", "openai:gpt-4.1-mini")
    try:
        assert registry.resolve_model("mine") == ("openai", "gpt-4.1-mini")
    finally:
        registry.remove_alias("mine")

    class Custom(OpenAIProvider):
        name = "custom"
        env_keys = ()
        requires_key = False

    registry.register_provider("custom", Custom)
    p = create_provider("custom:m1", base_url="http://127.0.0.1:1")
    assert isinstance(p, Custom) and p.model == "m1"
    with pytest.raises(TypeError):
        registry.register_provider("bad", object)  # type: ignore[arg-type]


async def test_metrics_record_on_success():
    s = SAMPLES["cohere"]
    seen = []
    rec = Recorder([streaming(s.stream_parts, s.content_type)])
    p = make_provider("cohere", s.model, rec, on_metrics=seen.append)
    async for _ in p.stream_generate("x"):
        pass
    m = seen[-1]
    assert (m.provider, m.model, m.stream, m.outcome) == ("cohere", "command-r-plus", True, "ok")
    assert m.chunks == 5 and m.output_tokens == 7 and m.time_to_first_token is not None
    assert m.duration >= m.time_to_first_token


async def test_ollama_list_and_pull():
    tags = {"models": [{"name": "llama3:latest", "model": "llama3:latest", "size": 1}]}
    progress = [
        ndjson({"status": "pulling manifest"}),
        ndjson({"status": "pulling abc", "digest": "sha256:abc", "total": 10, "completed": 5}),
        ndjson({"status": "success"}),
    ]

    def handler(request):
        if request.url.path == "/api/tags":
            return httpx.Response(200, json=tags)
        return httpx.Response(200, content=b"".join(progress))

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    p = OllamaProvider("llama3", base_url="http://x:11434", http_client=client)
    models = await p.list_models()
    assert models[0]["name"] == "llama3:latest"
    steps = [s async for s in p.pull_model("llama3")]
    assert [s["status"] for s in steps] == ["pulling manifest", "pulling abc", "success"]

    def failing(request):
        return httpx.Response(
            200,
            content=ndjson({"status": "pulling manifest"})
            + ndjson({"error": "pull model manifest: file does not exist"}),
        )

    p2 = OllamaProvider(
        "x",
        base_url="http://x:11434",
        http_client=httpx.AsyncClient(transport=httpx.MockTransport(failing)),
    )
    with pytest.raises(Exception, match="file does not exist"):
        async for _ in p2.pull_model("nosuch"):
            pass


def test_ollama_host_normalization():
    from n3_notebook.providers.ollama import normalize_host

    assert normalize_host("0.0.0.0:11434") == "http://127.0.0.1:11434"
    assert normalize_host("myhost") == "http://myhost:11434"
    assert normalize_host("https://ollama.example.com:443/") == "https://ollama.example.com:443"


def test_unreachable_server_is_clear():
    p = OllamaProvider(
        "llama3",
        base_url="http://127.0.0.1:9",
        retry=__import__("n3_notebook").RetryConfig(max_attempts=1),
    )
    from n3_notebook import APIConnectionError

    with pytest.raises(APIConnectionError) as info:
        p.generate("hi")
    assert "ollama serve" in str(info.value)
    assert len(str(info.value)) < 400


@pytest.mark.parametrize("status", [401, 400])
async def test_json_error_retry_not_on_4xx(status):
    s = SAMPLES["openai"]
    rec = Recorder([json_response(status, s.error_body)])
    p = make_provider("openai", s.model, rec)
    from n3_notebook import APIStatusError

    with pytest.raises(APIStatusError):
        await p.agenerate("x")
    assert len(rec.requests) == 1
