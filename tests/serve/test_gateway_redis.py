"""Budgets shared through a real redis-server (started here on a free loopback port, stopped
by its PID): two gateway instances keep one combined rate; killing Redis mid-run degrades to
per-worker budgets with a logged warning and no failed request.

redis-server comes from the Debian package (scripts/install_redis.sh); without it these
tests skip, except under CI, where that is a failure."""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

openai = pytest.importorskip("openai")
pytest.importorskip("redis")

from n3_notebook.serve.gateway_config import parse_gateway_config  # noqa: E402
from n3_notebook.serve.tokens import ApiToken  # noqa: E402

from .conftest import RedisServer  # noqa: E402

HI = [{"role": "user", "content": "hi"}]
LIMITED = """
[routes]
r = ["openai:gpt-4o-mini"]
[limits."openai:gpt-4o-mini"]
requests_per_minute = 20
"""


def _served(server: Any, n: int, token: str = "unused") -> tuple[int, int]:
    c = openai.OpenAI(base_url=f"{server.url}/v1", api_key=token, max_retries=0)
    ok = limited = 0
    for _ in range(n):
        try:
            c.chat.completions.create(model="r", messages=HI, max_tokens=5)
            ok += 1
        except openai.RateLimitError:
            limited += 1
    return ok, limited


def test_two_instances_share_one_upstream_limit(serve: Any, redis_server: RedisServer) -> None:
    a = serve(gateway_config=parse_gateway_config(LIMITED), redis_url=redis_server.url)
    b = serve(gateway_config=parse_gateway_config(LIMITED), redis_url=redis_server.url)
    t0 = time.monotonic()
    ok = limited = 0
    for _ in range(15):  # the two instances in turn
        for server in (a, b):
            o, lim = _served(server, 1)
            ok, limited = ok + o, limited + lim
    refill = (time.monotonic() - t0) * 20 / 60  # the budget refills while the test runs
    assert 20 <= ok <= 20 * 1.05 + refill + 1, (ok, refill)
    assert limited == 30 - ok


CONCURRENT = """
[routes]
r = ["openai:gpt-4o-mini"]
[limits."openai:gpt-4o-mini"]
requests_per_minute = 40
"""


def test_two_instances_hit_at_once_keep_one_rate(serve: Any, redis_server: RedisServer) -> None:
    """Four clients at once, two on each instance, for a few seconds: the requests let
    through stay within 1.05x of what one budget allows in that time (a full minute's
    bucket plus its refill), where two separate budgets would let through twice that."""
    a = serve(gateway_config=parse_gateway_config(CONCURRENT), redis_url=redis_server.url)
    b = serve(gateway_config=parse_gateway_config(CONCURRENT), redis_url=redis_server.url)
    seconds = 3.0
    t0 = time.monotonic()

    def client(server: Any) -> tuple[int, int]:
        ok = limited = 0
        while time.monotonic() - t0 < seconds:
            o, lim = _served(server, 1)
            ok, limited = ok + o, limited + lim
        return ok, limited

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(client, (a, b, a, b)))
    elapsed = time.monotonic() - t0
    ok = sum(o for o, _ in results)
    allowed = 40 + elapsed * 40 / 60
    assert sum(lim for _, lim in results) > 0
    assert 40 <= ok <= allowed * 1.05, (ok, allowed)


def test_without_redis_each_instance_has_its_own(serve: Any) -> None:
    a = serve(gateway_config=parse_gateway_config(LIMITED))
    b = serve(gateway_config=parse_gateway_config(LIMITED))
    assert _served(a, 20)[0] == 20 and _served(b, 20)[0] == 20


def test_killing_redis_degrades_without_failing(
    serve: Any, redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    token = ApiToken("metered", "tok-metered-0123456789abcdef", requests_per_minute=1000)
    config = parse_gateway_config('[routes]\nr = ["openai:gpt-4o-mini"]\n')
    server = serve(gateway_config=config, redis_url=redis_server.url, tokens=[token])
    assert _served(server, 3, token.token) == (3, 0)
    caplog.set_level(logging.WARNING, logger="n3_notebook.serve")
    redis_server.stop()
    assert _served(server, 5, token.token) == (5, 0)
    warnings = [r.getMessage() for r in caplog.records if "Redis" in r.getMessage()]
    assert len(warnings) == 1 and "unreachable" in warnings[0]
    assert "tok-metered" not in " ".join(warnings)
