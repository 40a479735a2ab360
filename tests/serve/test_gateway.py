"""The OpenAI-compatible gateway against the real server: the official openai SDK (sync,
async, streaming) calls models, routes and chains; fallbacks, the circuit breaker, key
pools, per-token models and budgets; errors in OpenAI's shape."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import subprocess
import sys
from typing import Any

import httpx
import pytest

openai = pytest.importorskip("openai")

from n3_notebook import RetryConfig, create_provider  # noqa: E402
from n3_notebook.serve.gateway_config import parse_gateway_config  # noqa: E402
from n3_notebook.serve.tokens import ApiToken  # noqa: E402

from .conftest import ROOT, SECRET_KEY, Factory, child_env, free_port  # noqa: E402

FAST = """
[routes]
fast = ["openai:gpt-4o-mini~status_529:1000", "anthropic:claude-3-5-haiku-latest"]
dead = ["openai:dead-model", "anthropic:claude-3-5-haiku-latest"]
solo = ["openai:gpt-4o-mini~status_529:1000"]
[breaker]
failures = 2
cooldown = 60
"""
HI = [{"role": "user", "content": "Say hi"}]


def client(server: Any, key: str = "unused") -> Any:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key=key, max_retries=0)


class DeadFactory(Factory):
    """Factory whose `openai:dead-model` points at a port nothing listens on."""

    def __init__(self, emu: Any) -> None:
        super().__init__(emu)
        self.dead_port = free_port()

    def __call__(self, spec: str) -> Any:
        if spec == "openai:dead-model":
            self.calls += 1
            return create_provider(
                spec,
                api_key=SECRET_KEY,
                base_url=f"http://127.0.0.1:{self.dead_port}/v1",
                retry=RetryConfig(max_attempts=2, base_delay=0.01, max_delay=0.05),
            )
        return super().__call__(spec)


@pytest.fixture
def gateway(serve: Any, emu: Any) -> Any:
    return serve(gateway_config=parse_gateway_config(FAST), provider_factory=DeadFactory(emu))


def test_sdk_sync_chat_and_stream(gateway: Any) -> None:
    c = client(gateway)
    r = c.chat.completions.create(model="openai:gpt-4o-mini", messages=HI, max_tokens=20)
    assert r.object == "chat.completion"
    assert r.choices[0].message.role == "assistant"
    assert r.choices[0].message.content
    assert r.choices[0].finish_reason in ("stop", "length")
    assert r.usage.completion_tokens > 0
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens

    chunks = list(
        c.chat.completions.create(
            model="haiku",
            messages=[{"role": "system", "content": "Be brief."}, *HI],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert text
    finals = [ch for ch in chunks if ch.choices and ch.choices[0].finish_reason]
    assert len(finals) == 1
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0
    assert all(ch.usage is None for ch in chunks[:-1])


def test_stream_wire_format(gateway: Any) -> None:
    """Exactly OpenAI's framing: `data:` lines only, [DONE] last; no usage without asking."""
    body = {"model": "openai:gpt-4o-mini", "messages": HI, "stream": True}
    with httpx.stream("POST", f"{gateway.url}/v1/chat/completions", json=body) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        raw = r.read().decode()
    events = [e for e in raw.split("\n\n") if e]
    assert all(e.startswith("data: ") and "\n" not in e for e in events)
    assert events[-1] == "data: [DONE]"
    assert '"usage"' not in raw


async def test_sdk_async_stream(gateway: Any) -> None:
    c = openai.AsyncOpenAI(base_url=f"{gateway.url}/v1", api_key="unused", max_retries=0)
    try:

        async def one(i: int) -> str:
            stream = await c.chat.completions.create(
                model="openai:gpt-4o-mini",
                messages=[{"role": "user", "content": f"question {i}"}],
                stream=True,
            )
            return "".join([ch.choices[0].delta.content or "" async for ch in stream])

        texts = await asyncio.gather(*(one(i) for i in range(5)))
        assert all(texts)
        r = await c.chat.completions.create(model="gemini:gemini-2.0-flash", messages=HI)
        assert r.choices[0].message.content
    finally:
        await c.close()


def test_models_list(gateway: Any) -> None:
    ids = [m.id for m in client(gateway).models.list()]
    assert ids[:3] == ["fast", "dead", "solo"]
    assert "chain:brief" in ids and "openai:gpt-4o-mini" in ids


def test_chain_as_model(gateway: Any, emu: Any) -> None:
    c = client(gateway)
    r = c.chat.completions.create(
        model="chain:brief", messages=[{"role": "user", "content": "owls"}]
    )
    assert r.choices[0].message.content
    assert r.model == "chain:brief"
    # both steps ran; the topic went to the one required input
    assert len(emu.records) == 2
    assert "owls" in str(emu.records[0].body)
    emu.reset()
    stream = c.chat.completions.create(
        model="chain:brief",
        messages=[{"role": "user", "content": '{"topic": "bees", "style": "terse"}'}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert text
    assert chunks[-1].usage.total_tokens > 0
    assert "terse" in str(emu.records[0].body)


def test_chain_inputs_error(gateway: Any) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client(gateway).chat.completions.create(
            model="chain:brief", messages=[{"role": "user", "content": '{"nope": 1}'}]
        )
    assert "nope" in info.value.body["message"]


def test_errors_in_openai_shape(gateway: Any) -> None:
    c = client(gateway)
    with pytest.raises(openai.NotFoundError) as nf:
        c.chat.completions.create(model="nosuch:model", messages=HI)
    assert nf.value.body["code"] == "model_not_found"
    assert nf.value.body["param"] == "model"
    with pytest.raises(openai.BadRequestError) as bad:
        c.chat.completions.create(model="openai:gpt-4o-mini", messages=[])
    assert set(bad.value.body) == {"message", "type", "param", "code"}
    assert bad.value.body["type"] == "invalid_request_error"
    with pytest.raises(openai.BadRequestError):
        c.chat.completions.create(
            model="openai:gpt-4o-mini", messages=[{"role": "tool", "content": "x"}]
        )
    r = httpx.post(f"{gateway.url}/v1/chat/completions", content=b"{not json")
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"
    # an upstream error before any token: a proper status, OpenAI's shape, no key
    with pytest.raises(openai.APIStatusError) as up:
        c.chat.completions.create(model="openai:gpt-4o-mini~invalid_key", messages=HI)
    assert up.value.status_code == 502
    assert SECRET_KEY not in str(up.value.body)


def test_fallback_on_529_every_request_served(gateway: Any, emu: Any) -> None:
    c = client(gateway)
    for _ in range(4):
        r = c.chat.completions.with_raw_response.create(model="fast", messages=HI)
        assert r.headers["x-n3-upstream"] == "anthropic:claude-3-5-haiku-latest"
        assert r.parse().choices[0].message.content
    first = [r for r in emu.records if r.provider == "openai"]
    # the first upstream is not retried while a fallback is left, and after two failures
    # in a row its breaker is open: it is not tried again
    assert len(first) == 2
    metrics = httpx.get(f"{gateway.url}/metrics").text
    assert 'n3_gateway_circuit_state{upstream="openai:gpt-4o-mini~status_529:1000"} 1.0' in metrics
    assert 'reason="circuit_open"' in metrics


def test_fallback_on_connection_refused_streaming(gateway: Any) -> None:
    c = client(gateway)
    stream = c.chat.completions.create(model="dead", messages=HI, stream=True)
    chunks = list(stream)
    assert chunks[0].model == "anthropic:claude-3-5-haiku-latest"
    assert "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)


def test_last_upstream_fails_with_its_error_and_breaker_skips(gateway: Any, emu: Any) -> None:
    c = client(gateway)
    for _ in range(2):
        with pytest.raises(openai.APIStatusError) as info:
            c.chat.completions.create(model="solo", messages=HI)
        assert info.value.status_code == 503
        assert info.value.body["code"] == "upstream_overloaded"
    n = len(emu.records)
    with pytest.raises(openai.APIStatusError) as skipped:
        c.chat.completions.create(model="solo", messages=HI)
    assert skipped.value.status_code == 503
    assert "circuit open" in skipped.value.body["message"]
    assert len(emu.records) == n  # the open breaker sent nothing upstream


def test_no_fallback_after_first_token(gateway: Any, emu: Any) -> None:
    """A stream that fails mid-way ends with an in-band error; no second upstream."""
    c = client(gateway)
    stream = c.chat.completions.create(
        model="openai:gpt-4o-mini~midstream_error:3", messages=HI, stream=True
    )
    got = []
    with pytest.raises(openai.APIError):
        for ch in stream:
            got.append(ch)
    assert any(ch.choices and ch.choices[0].delta.content for ch in got)
    assert len(emu.records) == 1


def test_token_models_and_budget(serve: Any, emu: Any) -> None:
    tokens = [
        ApiToken("app", "tok-app-0123456789abcdef", models=frozenset({"fast", "chain:brief"})),
        ApiToken("metered", "tok-met-0123456789abcdef", requests_per_minute=2),
    ]
    server = serve(tokens=tokens, gateway_config=parse_gateway_config(FAST))
    app = client(server, "tok-app-0123456789abcdef")
    assert app.chat.completions.create(model="fast", messages=HI).choices[0].message.content
    with pytest.raises(openai.PermissionDeniedError) as denied:
        app.chat.completions.create(model="openai:gpt-4o-mini", messages=HI)
    assert denied.value.body["code"] == "model_not_allowed"
    assert [m.id for m in app.models.list()] == ["fast", "chain:brief"]
    metered = client(server, "tok-met-0123456789abcdef")
    for _ in range(2):
        metered.chat.completions.create(model="openai:gpt-4o-mini", messages=HI)
    with pytest.raises(openai.RateLimitError) as limited:
        metered.chat.completions.create(model="openai:gpt-4o-mini", messages=HI)
    assert int(limited.value.response.headers["retry-after"]) >= 1
    with pytest.raises(openai.AuthenticationError):
        client(server, "wrong").chat.completions.create(model="fast", messages=HI)


def test_upstream_limit_moves_to_next(serve: Any, emu: Any) -> None:
    config = parse_gateway_config(
        '[routes]\nr = ["openai:gpt-4o-mini", "anthropic:claude-3-5-haiku-latest"]\n'
        '[limits."openai:gpt-4o-mini"]\nrequests_per_minute = 1\n'
    )
    server = serve(gateway_config=config)
    c = client(server)
    served = [
        c.chat.completions.with_raw_response.create(model="r", messages=HI).headers["x-n3-upstream"]
        for _ in range(2)
    ]
    assert served == ["openai:gpt-4o-mini", "anthropic:claude-3-5-haiku-latest"]


def test_key_pool_moves_to_the_next_key_on_429(serve: Any, emu: Any, monkeypatch: Any) -> None:
    """No provider_factory: the gateway makes its providers with the pool's keys."""
    monkeypatch.setenv("OPENAI_BASE_URL", emu.base_url("openai"))
    monkeypatch.setenv("POOL_KEY_1", "sk-pool-one-0000000000001111")
    monkeypatch.setenv("POOL_KEY_2", "sk-pool-two-0000000000002222")
    config = parse_gateway_config(
        '[keys]\nopenai = ["$POOL_KEY_1", "$POOL_KEY_2"]\n'
        '[routes]\nr = ["openai:gpt-4o-mini~rate_limit:1", "anthropic:claude-3-5-haiku-latest"]\n'
    )
    server = serve(gateway_config=config, provider_factory=None, chains=[])
    c = client(server)
    r = c.chat.completions.with_raw_response.create(model="r", messages=HI)
    assert r.headers["x-n3-upstream"] == "openai:gpt-4o-mini~rate_limit:1"
    assert len(emu.records) == 2  # key 1 was limited, key 2 answered
    router = server.app.state.n3.gateway.router
    one, two = "sk-pool-one-0000000000001111", "sk-pool-two-0000000000002222"
    up = router.upstreams["openai:gpt-4o-mini~rate_limit:1"]
    assert {key for key, _ in up.providers} == {one, two}
    # the limited key goes last: the next request starts with the other one
    assert router.pools["openai"].order() == [two, one]
    c.chat.completions.create(model="r", messages=HI)
    assert len(emu.records) == 3
    body = str(r.http_response.text) + httpx.get(f"{server.url}/metrics").text
    assert "sk-pool" not in body


def test_client_disconnect_closes_upstream(gateway: Any, emu: Any) -> None:
    emu.set_pacing(token_delay=0.05)
    try:
        body = {"model": "openai:gpt-4o-mini~long:400", "messages": HI, "stream": True}
        with httpx.stream("POST", f"{gateway.url}/v1/chat/completions", json=body) as r:
            for line in r.iter_lines():
                if '"content":"' in line and '"content":""' not in line:
                    break
        record = emu.wait_for_close_sync(0, 5.0)
        assert record.client_disconnected
        assert not record.completed
    finally:
        emu.set_pacing(token_delay=0.001)


def test_cli_rejects_bad_config_before_listening(tmp_path: Any) -> None:
    chains = tmp_path / "c.n3"
    chains.write_text("input topic\nstep a: openai:gpt-4o-mini\n    {topic}\n")
    config = tmp_path / "gateway.toml"
    config.write_text(
        '[routes]\nfast = ["openai:gpt-4o-mini"]\n\n[limits."openai:gpt-4o-mini"]\n'
        "requests_per_minute = -3\n"
    )
    port = free_port()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "n3_notebook",
            "serve",
            str(chains),
            "--port",
            str(port),
            "--config",
            str(config),
        ],
        env=child_env(N3_OFFLINE="1"),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert f"{config}, line 5" in proc.stderr
    assert "requests_per_minute" in proc.stderr
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather forecast for a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
PNG_URL = "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64).decode()


@pytest.mark.parametrize("model", ["openai:gpt-4o-mini", "anthropic:claude-3-5-haiku-latest"])
def test_tools_pass_through(gateway: Any, model: str) -> None:
    """A tool call from any provider comes back in OpenAI's shape, whole and streamed, and
    its result goes back as a `tool` message."""
    c = client(gateway)
    ask = [{"role": "user", "content": "weather in Paris?"}]
    r = c.chat.completions.create(model=model, messages=ask, tools=[WEATHER_TOOL])
    assert r.choices[0].finish_reason == "tool_calls"
    [call] = r.choices[0].message.tool_calls
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments)["city"] == "Paris"
    chunks = list(
        c.chat.completions.create(model=model, messages=ask, tools=[WEATHER_TOOL], stream=True)
    )
    deltas = [
        ch.choices[0].delta.tool_calls
        for ch in chunks
        if ch.choices and ch.choices[0].delta.tool_calls
    ]
    assert deltas and deltas[0][0].function.name == "get_weather"
    assert [ch.choices[0].finish_reason for ch in chunks if ch.choices][-1] == "tool_calls"
    history = [
        *ask,
        r.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
    ]
    final = c.chat.completions.create(model=model, messages=history, tools=[WEATHER_TOOL])
    assert final.choices[0].finish_reason == "stop" and final.choices[0].message.content


def test_structured_output_and_images(gateway: Any, emu: Any) -> None:
    c = client(gateway)
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
        "required": ["name", "age"],
    }
    r = c.chat.completions.create(
        model="openai:gpt-4o-mini",
        messages=[{"role": "user", "content": "a person"}],
        response_format={"type": "json_schema", "json_schema": {"name": "p", "schema": schema}},
    )
    value = json.loads(r.choices[0].message.content)
    assert isinstance(value["name"], str) and isinstance(value["age"], int)
    seen = c.chat.completions.create(
        model="haiku",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is in this picture?"},
                    {"type": "image_url", "image_url": {"url": PNG_URL}},
                ],
            }
        ],
    )
    assert seen.choices[0].message.content
    assert "'type': 'image'" in str(emu.records[-1].body)  # Anthropic's image block
    with pytest.raises(openai.BadRequestError) as bad:
        c.chat.completions.create(
            model="haiku",
            messages=[
                {
                    "role": "user",
                    "content": [{"type": "image_url", "image_url": {"url": "ftp://x"}}],
                }
            ],
        )
    assert bad.value.body["code"] == "invalid_image"
    with pytest.raises(openai.BadRequestError):
        c.chat.completions.create(model="haiku", messages=HI, tools=[{"type": "function"}])


def test_token_models_cover_chain_and_generate_routes(serve: Any) -> None:
    token = ApiToken("app", "tok-app-0123456789abcdef", models=frozenset({"chain:brief"}))
    server = serve(tokens=[token])
    auth = {"authorization": f"Bearer {token.token}"}
    ok = httpx.post(f"{server.url}/chains/brief/run", json={"topic": "owls"}, headers=auth)
    assert ok.status_code == 200
    denied = httpx.post(
        f"{server.url}/v1/generate", json={"prompt": "hi", "model": "haiku"}, headers=auth
    )
    assert denied.status_code == 403
    assert denied.json()["error"]["type"] == "model_not_allowed"


def test_client_named_models_are_bounded(gateway: Any) -> None:
    gateway.app.state.n3.gateway.router.max_upstreams = 2
    c = client(gateway)
    c.chat.completions.create(model="openai:gpt-4o-mini", messages=HI)
    c.chat.completions.create(model="haiku", messages=HI)
    with pytest.raises(openai.BadRequestError) as info:
        c.chat.completions.create(model="flash", messages=HI)
    assert info.value.body["code"] == "too_many_models"
    # a route's models are always served
    assert c.chat.completions.create(model="fast", messages=HI).choices[0].message.content
