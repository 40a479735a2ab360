"""Tiny loopback servers for transport tests: a handler per connection (plain or TLS),
an HTTP request reader, a canned OpenAI stream, and a CONNECT / absolute-form proxy."""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@contextlib.asynccontextmanager
async def server(
    handler: Handler, ssl_ctx: ssl.SSLContext | None = None, host: str = "127.0.0.1"
) -> AsyncIterator[tuple[str, dict[str, int]]]:
    """A loopback server running `handler` per connection; yields (url, stats)."""
    stats = {"connections": 0, "closed": 0}

    async def wrapped(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        stats["connections"] += 1
        try:
            await handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        except asyncio.CancelledError:
            pass  # the test ended while this connection was open; nothing to report
        finally:
            stats["closed"] += 1
            writer.close()

    srv = await asyncio.start_server(wrapped, host, 0, ssl=ssl_ctx)
    port = srv.sockets[0].getsockname()[1]
    scheme = "https" if ssl_ctx else "http"
    try:
        yield f"{scheme}://{host}:{port}", stats
    finally:
        srv.close()


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    body = await reader.readexactly(length) if length else b""
    if b"transfer-encoding: chunked" in head.lower():
        parts = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            data = await reader.readexactly(size + 2)
            if size == 0:
                break
            parts.append(data[:-2])
        body = b"".join(parts)
    return head, body


def respond(*responses: bytes, keep_open: bool = True) -> Handler:
    """Answer successive requests on a connection with these raw responses."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for raw in responses:
            await read_request(reader)
            writer.write(raw)
            await writer.drain()
        if keep_open:
            await reader.read()  # until the client closes

    return handler


def openai_sse(*texts: str) -> bytes:
    """An OpenAI chat-completions stream body carrying these texts."""
    events = [{"choices": [{"index": 0, "delta": {"content": t}}]} for t in texts]
    events.append({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    body = b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events)
    return body + b"data: [DONE]\n\n"


def http_response(body: bytes, headers: dict[str, str] | None = None) -> bytes:
    head = {"content-type": "text/event-stream", "content-length": str(len(body))}
    head.update(headers or {})
    lines = "".join(f"{k}: {v}\r\n" for k, v in head.items())
    return f"HTTP/1.1 200 OK\r\n{lines}\r\n".encode() + body


def openai_handler(*texts: str, seen: list[bytes] | None = None) -> Handler:
    """Answers every request on a connection with an OpenAI stream of `texts`."""
    raw = http_response(openai_sse(*texts))

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                head, _ = await read_request(reader)
            except asyncio.IncompleteReadError:
                return
            if seen is not None:
                seen.append(head)
            writer.write(raw)
            await writer.drain()

    return handler


class Proxy:
    """An HTTP proxy on loopback: CONNECT tunnels and absolute-form requests, recording
    each request line and its Proxy-Authorization header; `require` (a header value)
    answers 407 to requests without it."""

    def __init__(self, require: str | None = None) -> None:
        self.require = require
        self.seen: list[dict[str, Any]] = []
        self.url = ""
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> Proxy:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream: asyncio.StreamWriter | None = None
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            headers = {
                k.strip().lower(): v.strip()
                for k, _, v in (line.partition(":") for line in lines[1:] if line)
            }
            self.seen.append(
                {"method": method, "target": target, "auth": headers.get("proxy-authorization")}
            )
            if self.require is not None and headers.get("proxy-authorization") != self.require:
                writer.write(b"HTTP/1.1 407 Proxy Authentication Required\r\n")
                writer.write(b"content-length: 0\r\n\r\n")
                await writer.drain()
                return
            if method == "CONNECT":
                host, port = target.rsplit(":", 1)
                up_reader, upstream = await asyncio.open_connection(host, int(port))
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                await writer.drain()
                first = b""
            else:  # absolute-form: forward in origin-form
                rest = target.split("://", 1)[1]
                hostport, _, path = rest.partition("/")
                host, port = hostport.rsplit(":", 1)
                up_reader, upstream = await asyncio.open_connection(host, int(port))
                first = head.replace(target.encode(), b"/" + path.encode(), 1)
            upstream.write(first)
            await asyncio.gather(_pipe(reader, upstream), _pipe(up_reader, writer))
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            if upstream is not None:
                upstream.close()
            writer.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.write_eof()
