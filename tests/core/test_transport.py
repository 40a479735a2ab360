"""AiohttpTransport against hand-written HTTP/1.1 responses from tiny loopback servers."""

from __future__ import annotations

import asyncio
import gzip

import httpx
import pytest

from n3_notebook import APIConnectionError, OpenAIProvider, StreamConfig, StreamProtocolError
from n3_notebook.core.transport import BODY_READER, AiohttpTransport

from .loopback import Handler, http_response, openai_sse, read_request, respond, server


def client(**kw) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=AiohttpTransport(**kw), timeout=5.0)


CHUNKED = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n"
    b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nx-trailer: yes\r\n\r\n"
)
LENGTH = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello"


async def test_chunked_length_and_keepalive_reuse():
    async with server(respond(CHUNKED, LENGTH, CHUNKED)) as (url, stats), client() as c:
        r1 = await c.get(url + "/a")
        r2 = await c.post(url + "/b", json={"x": 1})
        r3 = await c.get(url + "/c")
        assert (r1.text, r2.text, r3.text) == ("hello, world", "hello", "hello, world")
        assert r1.headers["content-type"] == "text/plain"
        assert r1.http_version == "HTTP/1.1" and r1.reason_phrase == "OK"
        assert stats["connections"] == 1  # all three on one kept-alive connection
        assert c._transport.in_flight == 0 and c._transport.idle_connections == 1


async def test_streamed_body_arrives_progressively():
    async def handler(reader, writer):
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
        for i in range(5):
            writer.write(b"7\r\npart %d\n\r\n" % i)
            await writer.drain()
            await asyncio.sleep(0.05)
        writer.write(b"0\r\n\r\n")
        await reader.read()

    async with server(handler) as (url, _), client() as c:
        stamps = []
        async with c.stream("GET", url) as r:
            async for piece in r.aiter_bytes():
                stamps.append((asyncio.get_running_loop().time(), piece))
        assert b"".join(p for _, p in stamps) == b"".join(b"part %d\n" % i for i in range(5))
        assert len(stamps) >= 4 and stamps[-1][0] - stamps[0][0] > 0.15


async def test_close_delimited_body_and_no_reuse():
    raw = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nuntil the end"

    async def handler(reader, writer):
        await read_request(reader)
        writer.write(raw)
        await writer.drain()
        writer.close()

    async with server(handler) as (url, stats), client() as c:
        assert (await c.get(url)).text == "until the end"
        assert (await c.get(url)).text == "until the end"
        assert stats["connections"] == 2


async def test_head_204_304_have_no_body():
    responses = (
        b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n",
        b"HTTP/1.1 204 No Content\r\n\r\n",
        b"HTTP/1.1 304 Not Modified\r\n\r\n",
        LENGTH,
    )
    async with server(respond(*responses)) as (url, stats), client() as c:
        assert (await c.head(url)).content == b""
        assert (await c.get(url)).status_code == 204
        assert (await c.get(url)).status_code == 304
        assert (await c.get(url)).text == "hello"
        assert stats["connections"] == 1


async def test_informational_response_is_skipped():
    raw = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </x>\r\n\r\n" + LENGTH
    async with server(respond(raw)) as (url, _), client() as c:
        r = await c.post(url, content=b"data")
        assert r.status_code == 200 and r.text == "hello"


async def test_streamed_request_body_is_chunked():
    seen = {}

    async def handler(reader, writer):
        head, body = await read_request(reader)
        seen["head"], seen["body"] = head, body
        writer.write(LENGTH)
        await reader.read()

    async def gen():
        for part in (b"one ", b"two ", b"three"):
            yield part

    async with server(handler) as (url, _), client() as c:
        assert (await c.post(url, content=gen())).text == "hello"
    assert seen["body"] == b"one two three"
    assert b"transfer-encoding: chunked" in seen["head"].lower()


async def test_truncated_bodies_raise():
    for raw in (
        b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nhel",
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhel",
    ):

        async def handler(reader, writer, raw=raw):
            await read_request(reader)
            writer.write(raw)
            await writer.drain()
            writer.close()

        async with server(handler) as (url, _), client() as c:
            with pytest.raises(httpx.RemoteProtocolError):
                await c.get(url)
            assert c._transport.in_flight == 0


async def test_malformed_status_and_headers():
    for raw in (b"NOT HTTP\r\n\r\n", b"HTTP/1.1 abc OK\r\n\r\n", b"HTTP/1.1 200 OK\r\nbad\r\n\r\n"):
        async with server(respond(raw, keep_open=False)) as (url, _), client() as c:
            with pytest.raises(httpx.RemoteProtocolError):
                await c.get(url)


async def test_stale_keepalive_connection_is_replaced():
    async def handler(reader, writer):
        await read_request(reader)
        writer.write(LENGTH)
        await writer.drain()
        writer.close()  # the server drops the kept-alive connection at once

    async with server(handler) as (url, stats), client() as c:
        assert (await c.get(url)).text == "hello"
        await asyncio.sleep(0.05)
        assert (await c.get(url)).text == "hello"  # not an error: a fresh connection
        assert stats["connections"] == 2


async def test_connect_error_and_read_timeout():
    async with client() as c:
        with pytest.raises(httpx.ConnectError):
            await c.get("http://127.0.0.1:9/")
        assert c._transport.in_flight == 0

    async def silent(reader, writer):
        await read_request(reader)
        await asyncio.sleep(5)

    slow = httpx.AsyncClient(transport=AiohttpTransport(), timeout=0.2)
    async with server(silent) as (url, _), slow as c:
        with pytest.raises(httpx.ReadTimeout):
            await c.get(url)
        assert c._transport.in_flight == 0


async def test_pool_limit_and_pool_timeout():
    release = asyncio.Event()
    live = 0
    peak = 0

    async def handler(reader, writer):
        nonlocal live, peak
        await read_request(reader)
        live += 1
        peak = max(peak, live)
        await release.wait()
        live -= 1
        writer.write(LENGTH)
        await writer.drain()
        await reader.read()

    async with server(handler) as (url, _):
        t = AiohttpTransport(max_connections=2, max_keepalive=2)
        async with httpx.AsyncClient(transport=t, timeout=httpx.Timeout(5.0, pool=0.2)) as c:
            first = [asyncio.create_task(c.get(url)) for _ in range(2)]
            await asyncio.sleep(0.1)
            with pytest.raises(httpx.PoolTimeout):
                await c.get(url)
            release.set()
            assert [r.text for r in await asyncio.gather(*first)] == ["hello", "hello"]
            assert peak == 2 and t.in_flight == 0


async def test_cancel_mid_body_closes_connection():
    closed = asyncio.Event()

    async def handler(reader, writer):
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
        try:
            while True:
                writer.write(b"1\r\nx\r\n")
                await writer.drain()
                await asyncio.sleep(0.01)
        except ConnectionError:
            pass
        finally:
            closed.set()

    async with server(handler) as (url, _), client() as c:

        async def read():
            async with c.stream("GET", url) as r:
                async for _ in r.aiter_bytes():
                    pass

        task = asyncio.create_task(read())
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.wait_for(closed.wait(), 2.0)  # the server saw the connection go
        assert c._transport.in_flight == 0 and c._transport.idle_connections == 0


async def test_large_body_with_flow_control():
    payload = bytes(range(256)) * 20_000  # ~5 MB

    async def handler(reader, writer):
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % len(payload))
        writer.write(payload)
        await writer.drain()
        await reader.read()

    async with server(handler) as (url, _), client() as c:
        got = bytearray()
        async with c.stream("GET", url) as r:
            async for piece in r.aiter_bytes():
                got += piece
                await asyncio.sleep(0)  # a slow-ish consumer
        assert bytes(got) == payload


async def test_unsupported_scheme():
    async with client() as c:
        with pytest.raises(httpx.UnsupportedProtocol):
            await c.get("ftp://127.0.0.1/")


def _trickle(count: int, gap: float, then_stall: bool = True, requests: int = 1) -> Handler:
    """Chunked bodies of `count` pieces `gap` seconds apart, then silence (or their end)."""

    async def handler(reader, writer):
        for _ in range(requests):
            await read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
            for i in range(count):
                writer.write(b"2\r\n%02d\r\n" % i)
                await writer.drain()
                await asyncio.sleep(gap)
            if not then_stall:
                writer.write(b"0\r\n\r\n")
        await reader.read()

    return handler


async def test_one_timer_serves_many_reads_and_the_read_timeout_still_fires():
    """The read timeout is one lazily re-armed timer per connection, not a timer made and
    cancelled per read; silence after many reads still ends in ReadTimeout on time."""
    loop = asyncio.get_running_loop()
    armed = []
    real_call_at = loop.call_at

    def counting_call_at(when, callback, *args, **kw):
        if getattr(callback, "__name__", "") != "_set_result_unless_cancelled":  # not a sleep
            armed.append(when)
        return real_call_at(when, callback, *args, **kw)

    slow = httpx.AsyncClient(transport=AiohttpTransport(), timeout=httpx.Timeout(5.0, read=0.3))
    async with server(_trickle(40, 0.005)) as (url, _), slow as c, c.stream("GET", url) as r:
        read = r.extensions[BODY_READER]
        loop.call_at = counting_call_at  # type: ignore[method-assign]
        try:
            got = b""
            while len(got) < 80:
                got += await read()
            last = loop.time()
            with pytest.raises(httpx.ReadTimeout):
                await read()
            waited = loop.time() - last
        finally:
            del loop.call_at
    assert got == b"".join(b"%02d" % i for i in range(40))
    assert len(armed) <= 3, f"{len(armed)} timers for 40 reads"
    assert 0.25 <= waited < 1.5


async def test_body_reader_until_bounds_one_wait():
    async with server(_trickle(1, 0.0)) as (url, _), client() as c, c.stream("GET", url) as r:
        read = r.extensions[BODY_READER]
        assert await read() == b"00"
        loop = asyncio.get_running_loop()
        start = loop.time()
        with pytest.raises(httpx.ReadTimeout):
            await read(start + 0.1)  # the client's read timeout is 5 s
        assert 0.08 <= loop.time() - start < 1.0


async def test_body_reader_returns_empty_at_the_end_and_reuses_the_connection():
    handler = _trickle(3, 0.0, then_stall=False, requests=2)
    async with server(handler) as (url, stats), client() as c:
        for _ in range(2):
            async with c.stream("GET", url) as r:
                read = r.extensions[BODY_READER]
                got = b""
                while piece := await read():
                    got += piece
                assert got == b"000102"
                assert await read() == b""
        assert stats["connections"] == 1


async def test_gzip_encoded_sse_body_is_decoded_for_the_provider():
    """A gzip-encoded event stream (some gateways compress SSE) reaches the decoder
    decompressed: httpx decodes content-encoding, the transport passes bytes through."""
    body = gzip.compress(openai_sse("Hel", "lo, ", "gzip"))
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in (body[:10], body[10:])) + (
        b"0\r\n\r\n"
    )
    raw = (
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-encoding: gzip\r\n"
        b"transfer-encoding: chunked\r\n\r\n" + chunked
    )
    async with (
        server(respond(raw)) as (url, _),
        OpenAIProvider("m", api_key="sk-test", base_url=url + "/v1") as p,
    ):
        texts = [c.content async for c in p.stream_generate("hi")]
    assert "".join(texts) == "Hello, gzip"


async def test_server_closing_mid_body_is_a_connection_error_for_the_provider():
    full = openai_sse("one", "two", "three")
    cut = http_response(full)[: -len(full) // 2]

    async def handler(reader, writer):
        await read_request(reader)
        writer.write(cut)
        await writer.drain()
        writer.close()

    async with (
        server(handler) as (url, _),
        OpenAIProvider(
            "m", api_key="sk-test", base_url=url + "/v1", stream_config=StreamConfig()
        ) as p,
    ):
        got = []
        with pytest.raises((APIConnectionError, StreamProtocolError)):
            async for c in p.stream_generate("hi"):
                got.append(c.content)
        assert got and p.client._transport.in_flight == 0  # type: ignore[attr-defined]
