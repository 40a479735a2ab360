"""The HTTP side of a provider: client construction, pool limits, request specs."""

from __future__ import annotations

import json as jsonlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from .tls import VerifyTypes
from .transport import AiohttpTransport
from .types import Message

#: HTTP timeout of a whole (non-streamed) answer: long ones take minutes (streams are
#: bounded by StreamConfig instead).
DEFAULT_TIMEOUT = 600.0
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_MAX_CONNECTIONS = 100
DEFAULT_MAX_KEEPALIVE = 20
ERROR_BODY_LIMIT = 64 * 1024  # bytes of an error body we read before giving up on it


@dataclass(slots=True)
class RequestSpec:
    """What to send: built by a provider adapter, sent by the base provider. `messages` and
    `system` are what the caller asked, kept for the request's record (not sent as such)."""

    method: str
    path: str
    json: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    messages: Sequence[Message] = ()
    system: str | None = None


def make_timeout(timeout: float | httpx.Timeout | None) -> httpx.Timeout:
    if isinstance(timeout, httpx.Timeout):
        return timeout
    if timeout is None:
        return httpx.Timeout(None, connect=DEFAULT_CONNECT_TIMEOUT)
    return httpx.Timeout(timeout, connect=min(timeout, DEFAULT_CONNECT_TIMEOUT))


#: Request URLs an OwnClient keeps parsed (a provider uses a handful).
URL_CACHE_SIZE = 64


class OwnClient:
    """A client of our own on AiohttpTransport, and the short way to use it. It never
    follows redirects (a key never follows one); TLS trust and proxies come from `verify`
    and the environment (core/tls.py, core/proxy.py), httpx's own environment handling
    stays off.

    httpx.AsyncClient spends on every request what such a client never uses: the URL is
    parsed again from the base URL, cookies are merged in and extracted from the answer,
    and the request goes through the auth flow, the redirect loop and the event hooks.
    A provider with a client of its own builds its requests here (the client's headers
    merged as build_request does, the JSON body encoded as httpx encodes it, parsed URLs
    kept) and hands them straight to the transport. A client the caller passed
    (http_client=) is always used through its own send: it may have hooks, auth, mounts.
    benchmarks/gateway.py's cost split measures what a request costs."""

    __slots__ = ("_urls", "client", "transport")

    def __init__(self, client: httpx.AsyncClient, transport: AiohttpTransport) -> None:
        self.client = client
        self.transport = transport
        self._urls: dict[str, httpx.URL] = {}

    @classmethod
    def make(
        cls,
        timeout: float | httpx.Timeout | None,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        max_keepalive: int = DEFAULT_MAX_KEEPALIVE,
        verify: VerifyTypes = True,
    ) -> OwnClient:
        transport = AiohttpTransport(max_connections, max_keepalive, verify=verify)
        client = httpx.AsyncClient(
            timeout=make_timeout(timeout),
            transport=transport,
            follow_redirects=False,
            trust_env=False,
        )
        return cls(client, transport)

    def _url(self, url: str) -> httpx.URL:
        parsed = self._urls.get(url)
        if parsed is None:
            if len(self._urls) >= URL_CACHE_SIZE:
                self._urls.clear()
            parsed = self._urls[url] = httpx.URL(url)
        return parsed

    def build_request(
        self,
        method: str,
        url: str,
        json: Any,
        headers: dict[str, str],
        timeout: httpx.Timeout,
    ) -> httpx.Request:
        """The request client.build_request(method, url, json=, headers=, timeout=) makes."""
        merged = httpx.Headers(self.client.headers)
        merged.update(headers)
        content = None
        if json is not None:
            content = jsonlib.dumps(
                json, ensure_ascii=False, separators=(",", ":"), allow_nan=False
            ).encode("utf-8")
        request = httpx.Request(
            method,
            self._url(url),
            headers=merged,
            content=content,
            extensions={"timeout": timeout.as_dict()},
        )
        if content is not None:  # after Content-Length, and a caller's own type wins
            request.headers.setdefault("Content-Type", "application/json")
        return request

    async def send(self, request: httpx.Request) -> httpx.Response:
        """The streamed response (read it, then close it), as client.send(stream=True)."""
        return await self.transport.handle_async_request(request)


async def read_error_body(response: httpx.Response) -> bytes:
    """Up to ERROR_BODY_LIMIT bytes of an error response (then it is closed by the caller)."""
    parts: list[bytes] = []
    size = 0
    async for piece in response.aiter_bytes():
        parts.append(piece)
        size += len(piece)
        if size >= ERROR_BODY_LIMIT:
            break
    return b"".join(parts)[:ERROR_BODY_LIMIT]
