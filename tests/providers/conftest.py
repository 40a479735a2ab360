from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

import httpx
import pytest

from n3_notebook import RetryConfig, create_provider
from n3_notebook.core.base import BaseProvider

FAKE_KEYS = {
    "openai": "sk-fake-openai-KEY-0123456789",
    "anthropic": "sk-ant-fake-KEY-0123456789",
    "gemini": "AIzaFAKEgeminiKEY0123456789abcdef",
    "cohere": "co-fake-KEY-0123456789",
    "ollama": None,
}


class Recorder:
    """A MockTransport handler that answers from a queue of responses and records requests."""

    def __init__(self, responses: Iterable[Callable[[httpx.Request], httpx.Response]]):
        self.queue = list(responses)
        self.requests: list[httpx.Request] = []
        self.bodies: list[dict[str, Any]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        self.bodies.append(json.loads(request.content) if request.content else {})
        make = self.queue.pop(0) if len(self.queue) > 1 else self.queue[0]
        return make(request)


def streaming(
    parts: list[bytes],
    content_type: str,
    delay: float = 0.0,
    status: int = 200,
    headers: dict[str, str] | None = None,
):
    async def body() -> AsyncIterator[bytes]:
        for p in parts:
            if delay:
                await asyncio.sleep(delay)
            yield p

    def make(request: httpx.Request) -> httpx.Response:
        h = {"content-type": content_type, "x-request-id": "req_123", "request-id": "req_123"}
        h.update(headers or {})
        return httpx.Response(status, headers=h, content=body())

    return make


def json_response(status: int, payload: Any, headers: dict[str, str] | None = None):
    def make(request: httpx.Request) -> httpx.Response:
        h = {"x-request-id": "req_err", "request-id": "req_err"}
        h.update(headers or {})
        return httpx.Response(status, json=payload, headers=h)

    return make


def text_response(status: int, text: str, content_type: str = "text/html"):
    def make(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, text=text, headers={"content-type": content_type})

    return make


def make_provider(provider: str, model: str, recorder: Recorder, **kwargs: Any) -> BaseProvider:
    client = httpx.AsyncClient(transport=httpx.MockTransport(recorder))
    kwargs.setdefault("retry", RetryConfig(max_attempts=3, base_delay=0.001, max_delay=0.05))
    return create_provider(
        f"{provider}:{model}",
        api_key=FAKE_KEYS[provider],
        base_url="http://test.invalid",
        http_client=client,
        **kwargs,
    )


@pytest.fixture(autouse=True)
def _no_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("N3_OFFLINE", raising=False)
