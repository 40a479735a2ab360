"""OwnClient: a provider's own client builds its requests exactly as httpx's build_request
would (same headers in the same order, same body, same timeout) and sends them straight to
the transport; a client the caller passed (http_client=) still goes through its own send."""

from __future__ import annotations

import math
from typing import Any

import httpx
import pytest

from n3_notebook import OpenAIProvider
from n3_notebook.core.http import URL_CACHE_SIZE, OwnClient

CASES: list[tuple[str, str, Any, dict[str, str]]] = [
    (
        "POST",
        "https://api.openai.com/v1/chat/completions",
        {"model": "m", "messages": [{"role": "user", "content": "héllo ✓ 😀"}]},
        {"authorization": "Bearer sk-test", "x-extra": "1"},
    ),
    ("GET", "http://127.0.0.1:8000/v1/models", None, {"x-api-key": "k"}),
    (
        "POST",
        "http://127.0.0.1:8000/v1/messages",
        {},
        {"anthropic-version": "2023-06-01", "Content-Type": "application/json; charset=x"},
    ),
    ("POST", "http://h.example/x?alt=sse", {"a": [1, 2.5, None, True]}, {"CONTENT-TYPE": "t/x"}),
]


@pytest.mark.parametrize(("method", "url", "body", "headers"), CASES)
def test_requests_are_the_ones_build_request_makes(method, url, body, headers):
    own = OwnClient.make(30.0)
    timeout = httpx.Timeout(5.0, read=None)
    a = own.client.build_request(method, url, json=body, headers=headers, timeout=timeout)
    b = own.build_request(method, url, body, dict(headers), timeout)
    assert (b.method, b.url, b.content, b.extensions) == (a.method, a.url, a.content, a.extensions)
    assert list(b.headers.raw) == list(a.headers.raw)


def test_a_body_json_cannot_encode_fails_the_same_way():
    own = OwnClient.make(30.0)
    with pytest.raises(ValueError, match="JSON compliant"):
        own.build_request("POST", "http://h.example/", {"x": math.nan}, {}, own.client.timeout)


def test_parsed_urls_are_kept_and_bounded():
    own = OwnClient.make(30.0)
    own.build_request("GET", "http://h.example/a", None, {}, own.client.timeout)
    parsed = own._urls["http://h.example/a"]
    own.build_request("GET", "http://h.example/a", None, {}, own.client.timeout)
    assert own._urls["http://h.example/a"] is parsed
    for n in range(URL_CACHE_SIZE + 5):
        own.build_request("GET", f"http://h.example/{n}", None, {}, own.client.timeout)
    assert len(own._urls) <= URL_CACHE_SIZE


ANSWER = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "model": "gpt-test",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}
    ],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
}


async def test_a_passed_client_keeps_its_own_send_and_hooks():
    seen: list[str] = []

    async def hook(request: httpx.Request) -> None:
        seen.append(request.headers["authorization"])

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=ANSWER)

    client = httpx.AsyncClient(
        transport=httpx.MockTransport(handler), event_hooks={"request": [hook]}
    )
    async with client:
        p = OpenAIProvider(model="gpt-test", api_key="sk-hook-test", http_client=client)
        r = await p.agenerate("hello")
    assert r.content == "hi"
    assert seen == ["Bearer sk-hook-test"]
