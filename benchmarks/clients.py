"""The clients the streaming benchmarks compare, each reading one chat stream from the
benchmark server and returning the text it reassembled (so every run is also checked).

Every client is an object with `async stream(model) -> str`, `async first_text(model) ->
float` (seconds from request to first text) and `async aclose()`; one instance is reused
across runs, so connections are warm. Names match the rows of the result tables."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx

from n3_notebook import AnthropicProvider, OpenAIProvider, StreamConfig
from n3_notebook.wire import SSEDecoder

KEY = "sk-bench-not-a-real-key"
NO_BOUNDS = StreamConfig(stream_timeout=None, chunk_timeout=None)
_MESSAGES = [{"role": "user", "content": "benchmark"}]
#: the same, for the SDKs' typed parameters (each SDK has its own TypedDicts)
_SDK_MESSAGES: Any = _MESSAGES


def _request_bytes(path: str, model: str, anthropic: bool) -> bytes:
    body: dict[str, Any] = {"model": model, "messages": _MESSAGES, "stream": True}
    if anthropic:
        body["max_tokens"] = 100_000
    data = json.dumps(body).encode()
    return (
        b"POST %s HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
        b"content-length: %d\r\n\r\n%s" % (path.encode(), len(data), data)
    )


class RawClient:
    """The ceiling: one asyncio socket per stream, a byte-level SSE split, no JSON."""

    name = "raw socket"

    def __init__(self, url: str, anthropic: bool = False) -> None:
        self.host, port = url.rsplit("//", 1)[1].split(":")
        self.port = int(port)
        self.anthropic = anthropic
        self.path = "/v1/messages" if anthropic else "/v1/chat/completions"
        self.marker = b'"text":"' if anthropic else b'"content":"'
        self.conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def _connection(self, reuse: bool) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if reuse and self.conn is not None:
            return self.conn
        conn = await asyncio.open_connection(self.host, self.port)
        if reuse:
            self.conn = conn
        return conn

    def _texts(self, events: list[bytes]) -> list[str]:
        out = []
        m = self.marker
        for ev in events:
            i = ev.find(m)
            if i >= 0:
                j = ev.find(b'"', i + len(m))
                piece = ev[i + len(m) : j]
                if piece:
                    out.append(piece.decode())
        return out

    async def _read(self, model: str, reuse: bool, first_only: bool) -> Any:
        reader, writer = await self._connection(reuse)
        t0 = time.perf_counter()
        writer.write(_request_bytes(self.path, model, self.anthropic))
        pending = b""
        parts: list[str] = []
        first: float | None = None
        while True:
            data = await reader.read(65536)
            if not data:
                break
            pending += data
            # chunked framing is left in place: SSE events are split on blank lines
            events = pending.split(b"\n\n")
            pending = events.pop()
            texts = self._texts(events)
            if texts and first is None:
                first = time.perf_counter() - t0
            parts += texts
            if pending.endswith(b"0\r\n\r\n"):
                break
        if not reuse:
            writer.close()
        return first if first_only else "".join(parts)

    async def stream(self, model: str) -> str:
        return await self._read(model, reuse=False, first_only=False)

    async def first_text(self, model: str) -> float:
        return await self._read(model, reuse=True, first_only=True)

    async def aclose(self) -> None:
        if self.conn is not None:
            self.conn[1].close()


class HttpxOursClient:
    """Bare httpx with our SSE decoder and json.loads: the floor for an httpx client."""

    name = "httpx + n3 decoder"

    def __init__(self, url: str, anthropic: bool = False, limits: httpx.Limits | None = None):
        self.client = httpx.AsyncClient(
            base_url=url, timeout=None, limits=limits or httpx.Limits(), trust_env=False
        )
        self.anthropic = anthropic

    async def _run(self, model: str, first_only: bool) -> Any:
        path = "/v1/messages" if self.anthropic else "/v1/chat/completions"
        body: dict[str, Any] = {"model": model, "messages": _MESSAGES, "stream": True}
        parts: list[str] = []
        first: float | None = None
        t0 = time.perf_counter()
        async with self.client.stream("POST", path, json=body) as response:
            decoder = SSEDecoder()
            async for data in response.aiter_bytes():
                for ev in decoder.feed(data):
                    if ev.data == "[DONE]":
                        continue
                    payload = json.loads(ev.data)
                    if self.anthropic:
                        text = (payload.get("delta") or {}).get("text")
                    else:
                        choices = payload.get("choices") or [{}]
                        text = (choices[0].get("delta") or {}).get("content")
                    if text:
                        if first is None:
                            first = time.perf_counter() - t0
                        parts.append(text)
        return first if first_only else "".join(parts)

    async def stream(self, model: str) -> str:
        return await self._run(model, False)

    async def first_text(self, model: str) -> float:
        return await self._run(model, True)

    async def aclose(self) -> None:
        await self.client.aclose()


class HttpxSSEClient:
    name = "httpx-sse"

    def __init__(self, url: str) -> None:
        self.client = httpx.AsyncClient(base_url=url, timeout=None, trust_env=False)

    async def stream(self, model: str) -> str:
        from httpx_sse import aconnect_sse

        body = {"model": model, "messages": _MESSAGES, "stream": True}
        parts = []
        async with aconnect_sse(self.client, "POST", "/v1/chat/completions", json=body) as src:
            async for ev in src.aiter_sse():
                if ev.data == "[DONE]":
                    continue
                choices = json.loads(ev.data).get("choices") or [{}]
                text = (choices[0].get("delta") or {}).get("content")
                if text:
                    parts.append(text)
        return "".join(parts)

    async def aclose(self) -> None:
        await self.client.aclose()


class OpenAISDKClient:
    name = "openai SDK"

    def __init__(self, url: str, max_connections: int | None = None) -> None:
        import openai

        kwargs: dict[str, Any] = {}
        if max_connections:
            # the SDK's client is its own httpx fork's; it takes httpx's Limits as they are
            limits: Any = httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            )
            kwargs["http_client"] = openai.DefaultAsyncHttpxClient(limits=limits)
        self.client = openai.AsyncOpenAI(api_key=KEY, base_url=url + "/v1", max_retries=0, **kwargs)

    async def _run(self, model: str, first_only: bool) -> Any:
        t0 = time.perf_counter()
        first: float | None = None
        parts = []
        stream = await self.client.chat.completions.create(
            model=model,
            messages=_SDK_MESSAGES,
            stream=True,
        )
        async with stream:
            async for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    if first is None:
                        first = time.perf_counter() - t0
                    parts.append(chunk.choices[0].delta.content)
        return first if first_only else "".join(parts)

    async def stream(self, model: str) -> str:
        return await self._run(model, False)

    async def first_text(self, model: str) -> float:
        return await self._run(model, True)

    async def aclose(self) -> None:
        await self.client.close()


class AnthropicSDKClient:
    name = "anthropic SDK"

    def __init__(self, url: str) -> None:
        import anthropic

        self.client = anthropic.AsyncAnthropic(api_key=KEY, base_url=url, max_retries=0)

    async def _run(self, model: str, first_only: bool) -> Any:
        t0 = time.perf_counter()
        first: float | None = None
        parts = []
        stream = await self.client.messages.create(
            model=model,
            messages=_SDK_MESSAGES,
            max_tokens=100_000,
            stream=True,
        )
        async with stream:
            async for event in stream:
                if event.type == "content_block_delta" and event.delta.type == "text_delta":
                    if first is None:
                        first = time.perf_counter() - t0
                    parts.append(event.delta.text)
        return first if first_only else "".join(parts)

    async def stream(self, model: str) -> str:
        return await self._run(model, False)

    async def first_text(self, model: str) -> float:
        return await self._run(model, True)

    async def aclose(self) -> None:
        await self.client.close()


class LiteLLMClient:
    name = "LiteLLM"

    def __init__(self, url: str) -> None:
        import litellm  # noqa: F401 - only when installed

        self.url = url

    async def stream(self, model: str) -> str:
        import litellm

        parts = []
        response = await litellm.acompletion(
            model=f"openai/{model}",
            messages=_MESSAGES,
            stream=True,
            api_key=KEY,
            api_base=self.url + "/v1",
        )
        async for chunk in response:
            text = chunk.choices[0].delta.content
            if text:
                parts.append(text)
        return "".join(parts)

    async def aclose(self) -> None:
        pass


class OursClient:
    """n3_notebook's provider: stream_generate, StreamChunk per token."""

    def __init__(self, url: str, anthropic: bool = False, concurrency: int = 10) -> None:
        cls = AnthropicProvider if anthropic else OpenAIProvider
        base = url if anthropic else url + "/v1"
        self.name = f"n3_notebook {cls.__name__}"
        self.provider = cls(
            "bench",
            api_key=KEY,
            base_url=base,
            max_concurrent=concurrency,
            max_connections=max(100, concurrency),
            max_keepalive=max(20, concurrency),
            timeout=None,
            stream_config=NO_BOUNDS,
        )

    async def stream(self, model: str) -> str:
        self.provider.model = model
        parts = []
        async for chunk in self.provider.stream_generate("benchmark"):
            if chunk.content:
                parts.append(chunk.content)
        return "".join(parts)

    async def first_text(self, model: str) -> float:
        self.provider.model = model
        t0 = time.perf_counter()
        first: float | None = None
        async for chunk in self.provider.stream_generate("benchmark"):
            if chunk.content and first is None:
                first = time.perf_counter() - t0
        if first is None:
            raise RuntimeError("no text")
        return first

    async def aclose(self) -> None:
        await self.provider.aclose()
