"""StreamTransport: an HTTP/1.1 transport built for many long-lived streaming responses,
behind httpx's API (an httpx.AsyncBaseTransport), so clients, errors and tests are httpx's.

Why: an LLM stream is thousands of tiny chunked frames. httpcore turns every frame into an
h11 event passed up through several async layers (about 6.5 µs each, measured), and its
pool scans itself on every request, which is what made 1,000 live streams take 24 s. Here a
network read is de-chunked in one pass, whatever it holds, and the keep-alive pool is a
dict of per-origin stacks, so cost does not grow with the number of connections.

Scope: HTTP/1.1 over TCP or TLS, Content-Length / chunked / close-delimited bodies,
keep-alive with expiry, connection, read, write and pool timeouts from httpx's timeout
extension, request bodies in memory or streamed (chunked). No proxies and no HTTP/2:
make_client() uses httpx's own transport when a proxy is configured."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx

MAX_HEAD = 64 * 1024  # bytes of status line + headers we accept
MAX_CHUNK_LINE = 4096
KEEPALIVE_EXPIRY = 5.0  # seconds an idle connection is kept
HIGH_WATER = 1 << 20  # pause reading when this much is buffered and not consumed
_NO_BODY_STATUS = {204, 304}
#: Response extension holding the body's `read(until=None)` coroutine function, for readers
#: that want one read at a time without an async-iterator layer or a timer per read.
BODY_READER = "n3_body_read"


class _Protocol(asyncio.Protocol):
    """Socket events into a buffer and one waiter; flow control on a slow consumer."""

    __slots__ = (
        "buffer",
        "closed",
        "eof",
        "error",
        "paused",
        "received",
        "timer",
        "timer_at",
        "transport",
        "until",
        "waiter",
        "writable",
    )

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[None] | None = None
        self.eof = False
        self.closed = False
        self.error: BaseException | None = None
        self.paused = False
        self.received = 0
        self.writable: asyncio.Future[None] | None = None
        self.until: float | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.timer_at = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.received += len(data)
        self.buffer += data
        if len(self.buffer) > HIGH_WATER and not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof = True
        self.closed = True
        self.error = exc
        self._wake()
        self.stop_timer()
        if self.writable is not None and not self.writable.done():
            self.writable.set_result(None)

    def pause_writing(self) -> None:
        if self.writable is None or self.writable.done():
            self.writable = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self.writable is not None and not self.writable.done():
            self.writable.set_result(None)

    def _wake(self) -> None:
        w = self.waiter
        if w is not None and not w.done():
            w.set_result(None)

    def wait(self, loop: asyncio.AbstractEventLoop, until: float | None) -> asyncio.Future[None]:
        """A future for the next socket event; with `until` (loop time) it fails with
        TimeoutError if none comes by then. A stream waits once per network read, so one
        timer serves many waits: it is armed once and, when it fires while data has kept
        coming (each wait moves `until` on), re-armed for the current `until`. That costs
        a timer per timeout period instead of a timer made and cancelled per read."""
        fut = self.waiter = loop.create_future()
        self.until = until
        if until is not None and (self.timer is None or self.timer_at > until):
            if self.timer is not None:
                self.timer.cancel()
            self.timer_at = until
            self.timer = loop.call_at(until, self._expire, loop)
        return fut

    def _expire(self, loop: asyncio.AbstractEventLoop) -> None:
        self.timer = None
        w, until = self.waiter, self.until
        if w is None or w.done() or until is None:
            return  # nobody waits: the next wait arms a timer again
        if loop.time() >= until:
            w.set_exception(TimeoutError())
        else:
            self.timer_at = until
            self.timer = loop.call_at(until, self._expire, loop)

    def stop_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def take(self) -> bytes:
        data = bytes(self.buffer)
        self.buffer.clear()
        if self.paused and self.transport is not None and not self.closed:
            self.paused = False
            self.transport.resume_reading()
        return data


class _Connection:
    __slots__ = ("idle_since", "origin", "protocol", "transport")

    def __init__(self, origin: tuple[str, str, int], transport: Any, protocol: _Protocol):
        self.origin = origin
        self.transport = transport
        self.protocol = protocol
        self.idle_since = 0.0

    def usable(self, now: float) -> bool:
        p = self.protocol
        return (
            not p.eof
            and not p.closed
            and not p.buffer
            and not self.transport.is_closing()
            and now - self.idle_since < KEEPALIVE_EXPIRY
        )

    def close(self) -> None:
        self.protocol.stop_timer()
        if not self.transport.is_closing():
            self.transport.close()

    async def read(
        self, timeout: float | None, request: httpx.Request, until: float | None = None
    ) -> bytes:
        """What has arrived (waiting for it if nothing has); b"" at end of stream. Waits at
        most `timeout` seconds, and not past `until` (loop time) if given."""
        p = self.protocol
        if not p.buffer:
            if p.eof:
                return b""
            loop = asyncio.get_running_loop()
            limit = None if timeout is None else loop.time() + timeout
            if until is not None and (limit is None or until < limit):
                limit = until
            try:
                await p.wait(loop, limit)
            except TimeoutError:
                raise httpx.ReadTimeout(
                    "timed out waiting for the response", request=request
                ) from None
            finally:
                p.waiter = None
            if not p.buffer:
                if p.error is not None and not isinstance(p.error, EOFError):
                    raise httpx.ReadError(str(p.error) or "connection lost", request=request)
                return b""
        return p.take()

    async def write(self, data: bytes, timeout: float | None, request: httpx.Request) -> None:
        if self.protocol.closed or self.transport.is_closing():
            raise httpx.WriteError("the connection is closed", request=request)
        self.transport.write(data)
        w = self.protocol.writable
        if w is not None and not w.done():
            try:
                async with asyncio.timeout(timeout):
                    await w
            except TimeoutError:
                raise httpx.WriteTimeout("timed out sending the request", request=request) from None


class _Chunked:
    """Chunked transfer decoding of whole reads at a time."""

    __slots__ = ("done", "pending", "remaining", "state")

    SIZE, DATA, CRLF, TRAILER, DONE = range(5)

    def __init__(self) -> None:
        self.pending = b""
        self.remaining = 0
        self.state = self.SIZE
        self.done = False

    def feed(self, data: bytes) -> tuple[bytes, bytes]:
        """(decoded payload, bytes left over after the final chunk)."""
        buf = self.pending + data if self.pending else data
        self.pending = b""
        out: list[bytes] = []
        pos, n = 0, len(buf)
        state = self.state
        while pos < n:
            if state == self.DATA:
                take = min(self.remaining, n - pos)
                out.append(buf[pos : pos + take])
                pos += take
                self.remaining -= take
                if not self.remaining:
                    state = self.CRLF
            elif state == self.CRLF:
                if n - pos < 2:
                    self.pending = buf[pos:]
                    pos = n
                    break
                if buf[pos : pos + 2] != b"\r\n":
                    raise httpx.RemoteProtocolError("malformed chunked body (no CRLF after data)")
                pos += 2
                state = self.SIZE
            elif state == self.SIZE:
                end = buf.find(b"\r\n", pos)
                if end < 0:
                    if n - pos > MAX_CHUNK_LINE:
                        raise httpx.RemoteProtocolError("malformed chunked body (size line)")
                    self.pending = buf[pos:]
                    pos = n
                    break
                size_text = buf[pos:end].split(b";", 1)[0].strip()
                try:
                    size = int(size_text, 16)
                except ValueError:
                    raise httpx.RemoteProtocolError(
                        f"malformed chunked body (size {size_text[:20]!r})"
                    ) from None
                if size < 0:
                    raise httpx.RemoteProtocolError("malformed chunked body (negative size)")
                pos = end + 2
                if size:
                    self.remaining = size
                    state = self.DATA
                else:
                    state = self.TRAILER
            elif state == self.TRAILER:
                end = buf.find(b"\r\n", pos)
                if end < 0:
                    if n - pos > MAX_HEAD:
                        raise httpx.RemoteProtocolError("chunked trailers too large")
                    self.pending = buf[pos:]
                    pos = n
                    break
                if end == pos:
                    pos += 2
                    state = self.DONE
                    self.done = True
                    break
                pos = end + 2
        self.state = state
        rest = buf[pos:] if state == self.DONE and pos < n else b""
        return (out[0] if len(out) == 1 else b"".join(out)), rest


class _Body(httpx.AsyncByteStream):
    """A response body: yields what each network read brings, decoded; gives the
    connection back to the pool when complete, closes it otherwise."""

    def __init__(
        self,
        owner: StreamTransport,
        conn: _Connection,
        request: httpx.Request,
        framing: str,
        length: int,
        head_rest: bytes,
        keepalive: bool,
        read_timeout: float | None,
    ) -> None:
        self._owner = owner
        self._conn = conn
        self._request = request
        self._framing = framing  # "none", "length", "chunked", "close"
        self._left = length
        self._rest = head_rest
        self._keepalive = keepalive
        self._timeout = read_timeout
        self._complete = framing == "none"
        self._released = False
        self._chunked = _Chunked() if framing == "chunked" else None

    async def read(self, until: float | None = None) -> bytes:
        """The next piece of the body, decoded (what one network read brought); b"" at its
        end. `until` (loop time) bounds the wait besides the read timeout: past it,
        httpx.ReadTimeout."""
        while not self._complete:
            data = self._rest
            if data:
                self._rest = b""
            else:
                data = await self._conn.read(self._timeout, self._request, until)
                if not data:
                    if self._framing == "close":
                        self._complete = True
                        return b""
                    raise httpx.RemoteProtocolError(
                        "peer closed connection without sending complete message body",
                        request=self._request,
                    )
            chunked = self._chunked
            if chunked is not None:
                payload, extra = chunked.feed(data)
                if chunked.done:
                    self._complete = True
                    if extra:
                        self._keepalive = False  # bytes after the body: do not reuse
                if payload:
                    return payload
            elif self._framing == "length":
                if len(data) >= self._left:
                    if len(data) > self._left:
                        self._keepalive = False
                    data = data[: self._left]
                    self._left = 0
                    self._complete = True
                    if data:
                        return data
                else:
                    self._left -= len(data)
                    return data
            else:
                return data
        return b""

    async def __aiter__(self) -> AsyncIterator[bytes]:
        read = self.read
        while data := await read():
            yield data

    async def aclose(self) -> None:
        if self._released:
            return
        self._released = True
        reusable = self._complete and self._keepalive
        self._owner._release(self._conn, reusable)


def _timeouts(request: httpx.Request) -> dict[str, float | None]:
    return request.extensions.get("timeout", {}) or {}


class StreamTransport(httpx.AsyncBaseTransport):
    """HTTP/1.1 with a keep-alive pool: at most max_connections requests in flight, at
    most max_keepalive idle connections kept (per transport)."""

    def __init__(
        self,
        max_connections: int = 100,
        max_keepalive: int = 20,
        verify: bool | str | ssl.SSLContext = True,
    ) -> None:
        self.max_connections = max_connections
        self.max_keepalive = max_keepalive
        self._verify = verify
        self._ssl: ssl.SSLContext | None = None
        self._idle: dict[tuple[str, str, int], list[_Connection]] = {}
        self._idle_count = 0
        self._slots: asyncio.Semaphore | None = None
        self._in_flight = 0
        self._closed = False

    @property
    def in_flight(self) -> int:
        """Requests whose response body is not closed yet."""
        return self._in_flight

    @property
    def idle_connections(self) -> int:
        return self._idle_count

    def _ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            if isinstance(self._verify, ssl.SSLContext):
                ctx = self._verify
            elif self._verify is False:
                ctx = ssl.create_default_context()
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            else:
                import certifi

                cafile = self._verify if isinstance(self._verify, str) else certifi.where()
                ctx = ssl.create_default_context(cafile=cafile)
            ctx.set_alpn_protocols(["http/1.1"])
            self._ssl = ctx
        return self._ssl

    async def _connect(
        self, origin: tuple[str, str, int], request: httpx.Request, timeout: float | None
    ) -> _Connection:
        scheme, host, port = origin
        loop = asyncio.get_running_loop()
        ssl_ctx = self._ssl_context() if scheme == "https" else None
        try:
            async with asyncio.timeout(timeout):
                transport, protocol = await loop.create_connection(
                    _Protocol, host, port, ssl=ssl_ctx, server_hostname=host if ssl_ctx else None
                )
        except TimeoutError:
            raise httpx.ConnectTimeout(
                f"timed out connecting to {host}:{port}", request=request
            ) from None
        except OSError as exc:
            raise httpx.ConnectError(
                f"{exc.strerror or exc} ({host}:{port})", request=request
            ) from None
        return _Connection(origin, transport, protocol)

    def _take_idle(self, origin: tuple[str, str, int]) -> _Connection | None:
        stack = self._idle.get(origin)
        now = time.monotonic()
        while stack:
            conn = stack.pop()
            self._idle_count -= 1
            if conn.usable(now):
                return conn
            conn.close()
        return None

    def _release(self, conn: _Connection, reusable: bool) -> None:
        self._in_flight -= 1
        if self._slots is not None:
            self._slots.release()
        if reusable and not self._closed and self._idle_count < self.max_keepalive:
            conn.protocol.stop_timer()
            conn.idle_since = time.monotonic()
            self._idle.setdefault(conn.origin, []).append(conn)
            self._idle_count += 1
        else:
            conn.close()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._closed:
            raise httpx.ConnectError("the transport is closed", request=request)
        url = request.url
        scheme = url.scheme
        if scheme not in ("http", "https"):
            raise httpx.UnsupportedProtocol(f"unsupported URL scheme {scheme!r}", request=request)
        port = url.port or (443 if scheme == "https" else 80)
        origin = (scheme, url.host, port)
        timeouts = _timeouts(request)
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.max_connections)
        try:
            async with asyncio.timeout(timeouts.get("pool")):
                await self._slots.acquire()
        except TimeoutError:
            raise httpx.PoolTimeout("no free connection in time", request=request) from None
        self._in_flight += 1
        conn: _Connection | None = None
        try:
            reused = True
            conn = self._take_idle(origin)
            if conn is None:
                reused = False
                conn = await self._connect(origin, request, timeouts.get("connect"))
            try:
                return await self._exchange(conn, request, timeouts)
            except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError):
                if not reused or conn.protocol.received:
                    raise
                # A kept-alive connection the server had closed: one fresh try.
                conn.close()
                conn = await self._connect(origin, request, timeouts.get("connect"))
                return await self._exchange(conn, request, timeouts)
        except BaseException:
            self._in_flight -= 1
            self._slots.release()
            if conn is not None:
                conn.close()
            raise

    async def _exchange(
        self, conn: _Connection, request: httpx.Request, timeouts: dict[str, float | None]
    ) -> httpx.Response:
        conn.protocol.received = 0  # bytes of this exchange's response
        write_timeout = timeouts.get("write")
        headers = request.headers.raw
        chunked_body = any(
            k.lower() == b"transfer-encoding" and b"chunked" in v.lower() for k, v in headers
        )
        head = b"%s %s HTTP/1.1\r\n%s\r\n" % (
            request.method.encode(),
            request.url.raw_path,
            b"".join(k + b": " + v + b"\r\n" for k, v in headers),
        )
        if chunked_body:
            await conn.write(head, write_timeout, request)
            async for part in request.stream:  # type: ignore[union-attr]
                if part:
                    await conn.write(b"%x\r\n%s\r\n" % (len(part), part), write_timeout, request)
            await conn.write(b"0\r\n\r\n", write_timeout, request)
        else:
            body = await request.aread()
            await conn.write(head + body, write_timeout, request)
        read_timeout = timeouts.get("read")
        while True:
            status, reason, raw_headers, rest = await self._read_head(conn, request, read_timeout)
            if 100 <= status < 200 and status != 101:
                conn.protocol.buffer[:0] = rest  # the final response follows
                continue
            break
        framing, length, keepalive = _framing(request, status, raw_headers)
        body_stream = _Body(self, conn, request, framing, length, rest, keepalive, read_timeout)
        return httpx.Response(
            status,
            headers=raw_headers,
            stream=body_stream,
            request=request,
            extensions={
                "http_version": b"HTTP/1.1",
                "reason_phrase": reason,
                BODY_READER: body_stream.read,
            },
        )

    async def _read_head(
        self, conn: _Connection, request: httpx.Request, timeout: float | None
    ) -> tuple[int, bytes, list[tuple[bytes, bytes]], bytes]:
        buf = b""
        while True:
            end = buf.find(b"\r\n\r\n")
            if end >= 0:
                head, rest = buf[:end], buf[end + 4 :]
                break
            if len(buf) > MAX_HEAD:
                raise httpx.RemoteProtocolError("response headers too large", request=request)
            data = await conn.read(timeout, request)
            if not data:
                raise httpx.RemoteProtocolError(
                    "Server disconnected without sending a response.", request=request
                )
            buf += data
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
            raise httpx.RemoteProtocolError(
                f"malformed status line {lines[0][:80]!r}", request=request
            )
        try:
            status = int(parts[1])
        except ValueError:
            raise httpx.RemoteProtocolError(
                f"malformed status line {lines[0][:80]!r}", request=request
            ) from None
        headers: list[tuple[bytes, bytes]] = []
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            if not sep or not name or name != name.strip():
                raise httpx.RemoteProtocolError(
                    f"malformed header line {line[:80]!r}", request=request
                )
            headers.append((name, value.strip()))
        return status, parts[2] if len(parts) > 2 else b"", headers, rest

    async def aclose(self) -> None:
        self._closed = True
        for stack in self._idle.values():
            for conn in stack:
                conn.close()
        self._idle.clear()
        self._idle_count = 0


def _framing(
    request: httpx.Request, status: int, headers: list[tuple[bytes, bytes]]
) -> tuple[str, int, bool]:
    """(framing, content length, keep-alive) of a response, per RFC 9112 section 6."""
    keepalive = True
    chunked = False
    length: int | None = None
    for name, value in headers:
        lname = name.lower()
        if lname == b"transfer-encoding":
            chunked = value.lower().rsplit(b",", 1)[-1].strip() == b"chunked"
            if not chunked:
                keepalive = False
        elif lname == b"content-length":
            try:
                length = int(value)
            except ValueError:
                raise httpx.RemoteProtocolError(
                    "malformed Content-Length", request=request
                ) from None
        elif lname == b"connection" and b"close" in value.lower():
            keepalive = False
    for name, value in request.headers.raw:
        if name.lower() == b"connection" and b"close" in value.lower():
            keepalive = False
    if request.method == "HEAD" or status in _NO_BODY_STATUS or 100 <= status < 200:
        return "none", 0, keepalive
    if chunked:
        return "chunked", 0, keepalive
    if length is not None:
        return ("length", length, keepalive) if length else ("none", 0, keepalive)
    return "close", 0, False
