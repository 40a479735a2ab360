"""Reading a response body on the hot path: the network reads of a stream, decoded into
batches and bounded by the stream's clock; draining a finished body so its connection can
be reused; closing a response so what it held is freed at once.

A stream is thousands of tiny reads, so this reads the engine's body stream directly (the
transport's BODY_READER) with no async-iterator layers between the socket and the decoder
(benchmarks/results/design-figures.md and DESIGN.md say what each layer costs)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import httpx

from ..wire import NDJSONDecoder, SSEDecoder
from .errors import APIConnectionError
from .metrics import RequestMetrics
from .protocols import StreamMapper
from .timeouts import StreamClock
from .transport import BODY_READER

__all__ = [
    "BodyReader",
    "body_reader",
    "close_response",
    "drain",
    "flatten",
    "read_batches",
    "without_read_timeout",
]

DRAIN_TIMEOUT = 0.05  # seconds to wait for the end of a body after the answer's last event
DRAIN_LIMIT = 64 * 1024  # bytes read at most while draining

#: `read(until)`: the body's next bytes, b"" at its end, waiting no later than `until`
BodyReader = Callable[[float | None], Awaitable[bytes]]

T = TypeVar("T")


async def read_batches(
    response: httpx.Response,
    decoder: SSEDecoder | NDJSONDecoder,
    clock: StreamClock,
    rec: RequestMetrics,
    mapper: StreamMapper,
    provider: str,
) -> AsyncGenerator[list[Any], None]:
    """Network reads, decoded into batches of SSE events or NDJSON records, each wait
    bounded by the stream's clock (not the consumer's time). Once the mapper has seen
    the protocol's end, the rest of the body is drained so the connection can go back
    to the pool."""
    feed = decoder.feed
    read = body_reader(response)
    loop = asyncio.get_running_loop()
    read_limit = clock.read_limit
    while True:
        limit = read_limit(loop.time(), rec.chunks > 0)
        try:
            data = await read(limit)
        except (TimeoutError, httpx.HTTPError) as exc:
            now = loop.time()
            ours = isinstance(exc, (TimeoutError, httpx.TimeoutException)) and (
                limit is not None and now >= limit - 1e-3
            )  # else the client's own read timeout, or a broken connection
            if not ours:
                raise APIConnectionError(
                    f"the connection broke mid-stream after {rec.chunks} chunks "
                    f"({type(exc).__name__})",
                    provider=provider,
                ) from exc
            with contextlib.suppress(Exception):
                await response.aclose()
            raise clock.expired(now, provider, rec.chunks, rec.chunks > 0) from exc
        if not data:
            rest = decoder.flush()
            if rest:
                yield rest
            return
        clock.received += len(data)
        items = feed(data)
        if items:
            yield items
            if mapper.done:
                await drain(read)
                return


async def flatten(batches: AsyncGenerator[list[T], None]) -> AsyncGenerator[T, None]:
    """The items of an async generator of lists, one by one; closing this closes it."""
    try:
        async for batch in batches:
            for item in batch:
                yield item
    finally:
        await batches.aclose()


async def drain(read: BodyReader) -> None:
    """Read what is left of a body whose answer is complete (the chunked terminator, as a
    rule), briefly and boundedly, so the connection can be reused; else it is closed."""
    left = DRAIN_LIMIT
    until = asyncio.get_running_loop().time() + DRAIN_TIMEOUT
    try:
        while left > 0:
            data = await read(until)
            if not data:
                return
            left -= len(data)
    except (TimeoutError, httpx.HTTPError):
        pass


def body_reader(response: httpx.Response) -> BodyReader:
    """`read(until)`: the body's next bytes as they arrive, b"" at its end, waiting no later
    than `until` (loop time; TimeoutError or httpx.ReadTimeout past it). Without a
    content-encoding, the engine's own reader (BODY_READER): no async-iterator layers and no
    timer per read. Otherwise httpx's decoded bytes, each wait under asyncio.timeout_at."""
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    identity = encoding in ("", "identity")
    fast: BodyReader | None = response.extensions.get(BODY_READER) if identity else None
    if fast is not None:
        return fast
    source: AsyncIterator[bytes] = response.stream if identity else response.aiter_bytes()  # type: ignore[assignment]
    it = source.__aiter__()

    async def read(until: float | None) -> bytes:
        try:
            while True:
                if until is None:
                    data = await it.__anext__()
                else:
                    async with asyncio.timeout_at(until):
                        data = await it.__anext__()
                if data:
                    return data
        except StopAsyncIteration:
            return b""

    return read


_CLOSED_BODY = httpx.ByteStream(b"")


async def close_response(response: httpx.Response) -> None:
    """Close a response and unlink it from its body stream (httpx makes them refer to each
    other), so what a finished stream held is freed at once instead of by the cycle
    collector, which is what a full collection with thousands of live streams costs."""
    await response.aclose()
    response.stream = _CLOSED_BODY


def without_read_timeout(timeout: httpx.Timeout) -> httpx.Timeout:
    """The client's timeouts with no read limit (a stream's clock bounds its reads)."""
    return httpx.Timeout(connect=timeout.connect, read=None, write=timeout.write, pool=timeout.pool)
