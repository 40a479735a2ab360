"""AiohttpTransport: aiohttp (its llhttp parser, keep-alive pool, TLS and proxy tunnels)
behind httpx's API, so clients, errors and tests (MockTransport) stay httpx's.

Why aiohttp: one httpx/httpcore pool slows down with hundreds of live streams, while
aiohttp holds thousands on one loop; the openai SDK offers it for the same reason. Why not
a generic adapter: an LLM stream is thousands of tiny reads, and every async layer between
the socket and the SSE decoder costs CPU per read. So a response body here reads aiohttp's
payload stream directly, and its `read(until)` (the BODY_READER response extension) is what
the provider's stream loop calls: one `readany()` per network read, and one lazily re-armed
timer per body instead of a timer made and cancelled for every read.

Behaviour: redirects are never followed (httpx's client decides that, and ours does not);
bodies are not decompressed here (httpx decodes content-encoding, as with any transport);
at most `max_connections` requests in flight (waiting longer than the pool timeout is
httpx.PoolTimeout); idle connections are kept for KEEPALIVE_EXPIRY seconds. TLS trust comes
from core/tls.py, proxies from the environment through core/proxy.py."""

from __future__ import annotations

import asyncio
import functools
import ssl
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import httpx
import yarl
from aiohttp.streams import EMPTY_PAYLOAD

from .proxy import ProxyConfig
from .tls import VerifyTypes, ssl_context

__all__ = ["BODY_READER", "KEEPALIVE_EXPIRY", "AiohttpTransport"]

KEEPALIVE_EXPIRY = 5.0  # seconds an idle connection is kept
READ_BUFFER = 1 << 16  # aiohttp's per-response buffer before it pauses the socket
#: Response extension holding the body's `read(until=None)` coroutine function, for readers
#: that want one read at a time without an async-iterator layer or a timer per read.
BODY_READER = "n3_body_read"


class _Expired(Exception):
    """Set on a payload stream by the body's timer: its wait ran past its limit."""


class _Body(httpx.AsyncByteStream):
    """A response body read straight from aiohttp's payload stream."""

    __slots__ = (
        "_content",
        "_loop",
        "_owner",
        "_released",
        "_request",
        "_response",
        "_timeout",
        "_timer",
        "_timer_at",
        "_until",
        "_waiting",
    )

    def __init__(
        self,
        owner: AiohttpTransport,
        response: aiohttp.ClientResponse,
        request: httpx.Request,
        read_timeout: float | None,
    ) -> None:
        self._owner = owner
        self._response: aiohttp.ClientResponse | None = response
        self._content: aiohttp.StreamReader = response.content
        self._request = request
        self._timeout = read_timeout
        self._loop = asyncio.get_running_loop()
        self._released = False
        self._waiting = False
        self._until: float | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0

    async def read(self, until: float | None = None) -> bytes:
        """What the next network read brought (b"" at the end of the body), waiting no
        longer than the read timeout and not past `until` (loop time): past either,
        httpx.ReadTimeout."""
        limit = until
        timeout = self._timeout
        if timeout is not None:
            idle_end = self._loop.time() + timeout
            if limit is None or idle_end < limit:
                limit = idle_end
        self._until = limit
        if limit is not None and (self._timer is None or self._timer_at > limit):
            self._arm(limit)
        self._waiting = True
        try:
            return await self._content.readany()
        except _Expired:
            raise httpx.ReadTimeout(
                "timed out waiting for the response", request=self._request
            ) from None
        except aiohttp.ClientPayloadError as exc:
            raise httpx.RemoteProtocolError(
                f"the response body is incomplete or malformed ({_reason(exc)})",
                request=self._request,
            ) from exc
        except (aiohttp.ClientError, OSError, RuntimeError) as exc:
            # RuntimeError: aiohttp's "Connection closed." when the socket went away
            raise httpx.ReadError(
                f"the connection broke ({_reason(exc)})", request=self._request
            ) from exc
        finally:
            self._waiting = False

    def _arm(self, when: float) -> None:
        """One timer serves many reads: armed once and, when it fires while data has kept
        coming (each read moves `_until` on), re-armed for the current limit."""
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = when
        self._timer = self._loop.call_at(when, self._expire)

    def _expire(self) -> None:
        self._timer = None
        until = self._until
        if not self._waiting or until is None:
            return  # nobody waits: the next read arms a timer again
        if self._loop.time() >= until:
            self._content.set_exception(_Expired())
        else:
            self._arm(until)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        read = self.read
        while data := await read():
            yield data

    async def aclose(self) -> None:
        if self._released:
            return
        self._released = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        response, self._response = self._response, None
        content, self._content = self._content, EMPTY_PAYLOAD
        if response is not None:
            if content.at_eof() and content.exception() is None:
                response.release()  # complete: the connection goes back to the pool
            else:
                response.close()  # part of the body is unread: the connection is not reused
        self._owner._done()


class AiohttpTransport(httpx.AsyncBaseTransport):
    """httpx transport on one aiohttp.ClientSession (made on first use, on the running
    loop): at most max_connections requests in flight; keep-alive is aiohttp's pool."""

    def __init__(
        self,
        max_connections: int = 100,
        max_keepalive: int = 20,
        verify: VerifyTypes = True,
        proxies: ProxyConfig | None = None,
    ) -> None:
        self.max_connections = max_connections
        self.max_keepalive = max_keepalive  # kept for the API; aiohttp expires idle ones
        self._ssl: ssl.SSLContext = ssl_context(verify)
        self._proxies = proxies if proxies is not None else ProxyConfig()
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._slots: asyncio.Semaphore | None = None
        self._in_flight = 0
        self._closed = False

    @property
    def in_flight(self) -> int:
        """Requests whose response body is not closed yet."""
        return self._in_flight

    @property
    def idle_connections(self) -> int:
        """Kept-alive connections waiting in the pool (read from aiohttp's connector)."""
        session = self._session
        if session is None or session.closed:
            return 0
        conns = getattr(session.connector, "_conns", {})
        return sum(len(stack) for stack in conns.values())

    def _session_for(self, loop: asyncio.AbstractEventLoop) -> aiohttp.ClientSession:
        if self._session is None or self._loop is not loop:
            connector = aiohttp.TCPConnector(
                limit=0,  # the slots below bound requests in flight
                ssl=self._ssl,
                keepalive_timeout=KEEPALIVE_EXPIRY,
                enable_cleanup_closed=False,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                auto_decompress=False,  # httpx decodes content-encoding
                cookie_jar=aiohttp.DummyCookieJar(),
                read_bufsize=READ_BUFFER,
                trust_env=False,  # proxies come from self._proxies
            )
            self._loop = loop
            self._slots = asyncio.Semaphore(self.max_connections)
        return self._session

    def _done(self) -> None:
        self._in_flight -= 1
        if self._slots is not None:
            self._slots.release()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._closed:
            raise httpx.ConnectError("the transport is closed", request=request)
        url = request.url
        if url.scheme not in ("http", "https"):
            raise httpx.UnsupportedProtocol(
                f"unsupported URL scheme {url.scheme!r}", request=request
            )
        session = self._session_for(asyncio.get_running_loop())
        slots = self._slots
        assert slots is not None
        timeouts: dict[str, float | None] = request.extensions.get("timeout") or {}
        if slots.locked():
            try:
                async with asyncio.timeout(timeouts.get("pool")):
                    await slots.acquire()
            except TimeoutError:
                raise httpx.PoolTimeout("no free connection in time", request=request) from None
        else:
            await slots.acquire()
        self._in_flight += 1
        try:
            response = await self._send(session, request, timeouts)
        except BaseException:
            self._done()
            raise
        read_timeout = timeouts.get("read")
        conn = response.connection
        if conn is not None and conn.protocol is not None:
            conn.protocol.read_timeout = None  # the body's own timer takes over from here
        body = _Body(self, response, request, read_timeout)
        version = response.version
        return httpx.Response(
            response.status,
            headers=list(response.raw_headers),
            stream=body,
            request=request,
            extensions={
                "http_version": b"HTTP/%d.%d" % (version.major, version.minor)
                if version
                else b"HTTP/1.1",
                "reason_phrase": (response.reason or "").encode("latin-1", "replace"),
                BODY_READER: body.read,
            },
        )

    async def _send(
        self,
        session: aiohttp.ClientSession,
        request: httpx.Request,
        timeouts: dict[str, float | None],
    ) -> aiohttp.ClientResponse:
        url = request.url
        proxy = self._proxies.for_url(url.scheme, url.host)
        headers: list[tuple[str, str]] = []
        streamed = False  # a body of unknown length: aiohttp sends it chunked
        for name, value in request.headers.raw:
            lower = name.lower()
            if lower == b"host":  # aiohttp writes Host from the URL
                continue
            if lower == b"transfer-encoding":
                streamed = True
                continue
            headers.append((name.decode("latin-1"), value.decode("latin-1")))
        data: Any = _stream_body(request) if streamed else (await request.aread() or None)
        timeout = _client_timeout(timeouts.get("connect"), timeouts.get("read"))
        target = yarl.URL(str(url), encoded=True)
        if url.userinfo:  # httpx turned it into an Authorization header already
            target = target.with_user(None)
        try:
            return await session.request(
                request.method,
                target,
                headers=headers,
                data=data,
                allow_redirects=False,
                timeout=timeout,
                proxy=proxy.url if proxy else None,
                proxy_headers=proxy.headers if proxy else None,
            )
        except aiohttp.ClientConnectorCertificateError as exc:
            raise httpx.ConnectError(
                f"TLS certificate of {url.host} refused ({_reason(exc.certificate_error)})",
                request=request,
            ) from exc.certificate_error
        except aiohttp.ConnectionTimeoutError as exc:
            raise httpx.ConnectTimeout(
                f"timed out connecting to {url.host}:{url.port or ''}".rstrip(":"),
                request=request,
            ) from exc
        except (aiohttp.SocketTimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise httpx.ReadTimeout("timed out waiting for the response", request=request) from exc
        except aiohttp.ClientHttpProxyError as exc:
            raise httpx.ProxyError(
                f"the proxy refused the connection (HTTP {exc.status} {exc.message})",
                request=request,
            ) from exc
        except aiohttp.ClientProxyConnectionError as exc:
            raise httpx.ProxyError(
                f"cannot reach the proxy ({_reason(exc)})", request=request
            ) from exc
        except aiohttp.ClientConnectorError as exc:
            raise httpx.ConnectError(_reason(exc), request=request) from exc
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientResponseError) as exc:
            # no or a malformed response head (ClientResponseError carries the parser's error)
            raise httpx.RemoteProtocolError(_reason(exc), request=request) from exc
        except aiohttp.ClientPayloadError as exc:
            raise httpx.RemoteProtocolError(_reason(exc), request=request) from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise httpx.NetworkError(_reason(exc), request=request) from exc

    async def aclose(self) -> None:
        self._closed = True
        session, self._session = self._session, None
        if session is not None and not session.closed:
            await session.close()


@functools.lru_cache(maxsize=64)
def _client_timeout(connect: float | None, read: float | None) -> aiohttp.ClientTimeout:
    """aiohttp's timeouts for httpx's connect and read ones (pool waits are bounded by the
    transport's slots, and body reads by the body's own timer)."""
    return aiohttp.ClientTimeout(total=None, connect=None, sock_connect=connect, sock_read=read)


async def _stream_body(request: httpx.Request) -> AsyncIterator[bytes]:
    async for part in request.stream:  # type: ignore[union-attr]
        if part:
            yield part


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
