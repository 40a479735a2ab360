"""The gateway's parts without I/O: the TOML configuration and its errors, the circuit
breaker, key pools, per-minute budgets, the token file's gateway options, the wire writer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from n3_notebook.core.budgets import MinuteBudget
from n3_notebook.core.errors import (
    APIConnectionError,
    AuthenticationError,
    BadRequestError,
    LLMTimeoutError,
    OverloadedError,
    RateLimitError,
    ServerError,
)
from n3_notebook.core.limits import estimate_tokens
from n3_notebook.core.types import Usage
from n3_notebook.serve.gateway_config import (
    BreakerConfig,
    GatewayConfigError,
    load_gateway_config,
    parse_gateway_config,
)
from n3_notebook.serve.openai_wire import ChunkWriter
from n3_notebook.serve.routing import (
    CLOSED,
    HALF_OPEN,
    OPEN,
    CircuitBreaker,
    KeyPool,
    is_fallback_error,
)
from n3_notebook.serve.shared_budgets import shown_url
from n3_notebook.serve.tokens import TokenFileError, load_token_file

EXAMPLE = """\
[routes]            # a name clients use as `model`, tried in order
fast = ["openai:gpt-4o-mini", "anthropic:claude-3-5-haiku-latest"]
[keys]              # a pool per provider, least-recently-limited first
openai = ["$GW_KEY_A", "$GW_KEY_B"]
[limits."openai:gpt-4o-mini"]
requests_per_minute = 500
tokens_per_minute = 200000
"""


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GW_KEY_A", "sk-gw-a-000000000000000000")
    monkeypatch.setenv("GW_KEY_B", "sk-gw-b-000000000000000000")


def test_the_issue_example_loads(keys: None, tmp_path: Path) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text(EXAMPLE)
    config = load_gateway_config(path)
    assert config.routes == {"fast": ("openai:gpt-4o-mini", "anthropic:claude-3-5-haiku-latest")}
    assert config.keys == {"openai": ("sk-gw-a-000000000000000000", "sk-gw-b-000000000000000000")}
    limit = config.limits["openai:gpt-4o-mini"]
    assert (limit.requests_per_minute, limit.tokens_per_minute) == (500, 200000)
    assert config.breaker == BreakerConfig()
    assert "sk-gw" not in repr(config)


@pytest.mark.parametrize(
    ("change", "where", "says"),
    [
        (("500", "0"), 'line 6, limits."openai:gpt-4o-mini".requests_per_minute', "at least 1"),
        (("tokens_per_minute", "tpm"), 'line 7, limits."openai:gpt-4o-mini".tpm', "unknown"),
        (("$GW_KEY_B", "$GW_UNSET"), "line 4, keys.openai", "GW_UNSET is not set"),
        (("openai = [", "nosuch = ["), "line 4, keys.nosuch", "Unknown provider"),
        (("fast =", '"a:b" ='), 'line 2, routes."a:b"', "no ':'"),
        (('"openai:gpt-4o-mini", "anth', '"nosuch:x", "anth'), "line 2, routes.fast", "Unknown"),
        (("[routes]", "[route]"), "line 1, route", "unknown table"),
        (("fast = [", "fast = 3 #["), "line 2, routes.fast", "list of strings"),
    ],
)
def test_errors_name_file_line_and_key(
    keys: None, change: tuple[str, str], where: str, says: str
) -> None:
    text = EXAMPLE.replace(*change)
    with pytest.raises(GatewayConfigError) as info:
        parse_gateway_config(text, "gw.toml")
    message = str(info.value)
    assert message.startswith(f"gw.toml, {where}: "), message
    assert says in message
    assert "sk-gw" not in message


def test_syntax_error_and_breaker_settings(keys: None) -> None:
    with pytest.raises(GatewayConfigError, match=r"^gw\.toml, line 3, column 8: not valid TOML"):
        parse_gateway_config("[routes]\n\nfast = ]\n", "gw.toml")
    with pytest.raises(GatewayConfigError, match=r"^gw\.toml, line 2 \(the end\): not valid"):
        parse_gateway_config("[routes]\nfast = [\n", "gw.toml")
    with pytest.raises(GatewayConfigError, match=r"breaker\.cooldown: must be seconds"):
        parse_gateway_config("[breaker]\ncooldown = -1\n", "gw.toml")
    cfg = parse_gateway_config("[breaker]\nfailures = 3\ncooldown = 2.5\n")
    assert cfg.breaker == BreakerConfig(3, 2.5)


def test_breaker_opens_probes_and_closes() -> None:
    clock = Clock()
    b = CircuitBreaker(BreakerConfig(failures=3, cooldown=10), clock)
    for _ in range(2):
        assert b.allow()
        b.failure()
    assert b.state == CLOSED
    b.success()  # a success resets the count
    for _ in range(3):
        assert b.allow()
        b.failure()
    assert b.state == OPEN and not b.allow()
    clock.now += 10
    assert b.allow() and b.state == HALF_OPEN
    assert not b.allow()  # one probe at a time
    b.failure()
    assert b.state == OPEN and not b.allow()
    clock.now += 10
    assert b.allow()
    b.release()  # a cancelled probe lets another through
    assert b.allow()
    b.success()
    assert b.state == CLOSED and b.allow() and b.allow()


def test_key_pool_least_recently_limited_first() -> None:
    clock = Clock()
    pool = KeyPool(["a", "b", "c"], clock)
    assert pool.order() == ["a", "b", "c"]
    pool.limited("a")
    assert pool.order() == ["b", "c", "a"]
    clock.now += 1
    pool.limited("b")
    assert pool.order() == ["c", "a", "b"]


def test_fallback_errors() -> None:
    for exc in (
        RateLimitError("x", status_code=429),
        OverloadedError("x", status_code=529),
        ServerError("x", status_code=500),
        LLMTimeoutError("x"),
        APIConnectionError("x"),
    ):
        assert is_fallback_error(exc), exc
    for exc in (BadRequestError("x", status_code=400), AuthenticationError("x", status_code=401)):
        assert not is_fallback_error(exc), exc


def test_minute_budget() -> None:
    clock = Clock()
    b = MinuteBudget(requests_per_minute=2, tokens_per_minute=1000, clock=clock)
    assert b.take(100) == 0 and b.take(100) == 0
    wait = b.take(100)
    assert wait == pytest.approx(30.0)  # one request refills in 60 / 2 s
    clock.now += 30
    assert b.take(100) == 0
    t = MinuteBudget(tokens_per_minute=600, clock=clock)
    assert t.take(500) == 0
    assert t.take(500) == pytest.approx(40.0)  # 400 missing at 10 a second
    t.settle(500, 50)  # the answer used 50: 450 come back
    assert t.take(500) == 0
    assert estimate_tokens({"texts": ["abcd" * 10], "max_tokens": None}) == 10 + 1 + 256
    assert estimate_tokens({"texts": ["abc"], "max_tokens": 5}) == 1 + 5


def test_token_file_gateway_options(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text(
        "app  tok-app-0123456789abcdef  models=fast,chain:brief requests_per_minute=60\n"
        "ci   tok-ci-00123456789abcdef  tokens_per_minute=1000 max_concurrent=2\n"
    )
    path.chmod(0o600)
    app, ci = load_token_file(path)
    assert app.models == frozenset({"fast", "chain:brief"}) and app.requests_per_minute == 60
    assert app.may_use("fast") and not app.may_use("openai:gpt-4o")
    assert ci.models is None and ci.may_use("anything")
    assert (ci.tokens_per_minute, ci.max_concurrent) == (1000, 2)
    path.write_text("app tok-app-0123456789abcdef rpm=5\n")
    with pytest.raises(TokenFileError, match="line 1: unknown option"):
        load_token_file(path)


def test_chunk_writer_escapes_and_frames() -> None:
    w = ChunkWriter("chatcmpl-1", "m", include_usage=True)
    event = w.text('a "quote"\n\u2028 and \x00')
    assert event.startswith(b"data: {") and event.endswith(b"}\n\n")
    obj = json.loads(event[6:])
    assert obj["choices"][0]["delta"] == {"content": 'a "quote"\n\u2028 and \x00'}
    assert obj["usage"] is None and obj["object"] == "chat.completion.chunk"
    end = w.end("weird_reason", Usage.of(3, 4)).split(b"\n\n")
    assert json.loads(end[0][6:])["choices"][0]["finish_reason"] == "stop"
    assert json.loads(end[1][6:])["usage"]["total_tokens"] == 7
    assert end[2] == b"data: [DONE]"


def test_redis_url_shown_without_password() -> None:
    assert shown_url("redis://:s3cret-pass@10.0.0.1:6379/0") == "redis://***@10.0.0.1:6379/0"
    assert shown_url("rediss://u:p@h:1/2") == "rediss://***@h:1/2"
    assert shown_url("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"
