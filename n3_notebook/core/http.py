"""The HTTP side of a provider: client construction, pool limits, request specs."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import httpx

from .pool import ShardedTransport
from .transport import StreamTransport

TRANSPORT_ENV = "N3_HTTP_TRANSPORT"

DEFAULT_TIMEOUT = 60.0
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_MAX_CONNECTIONS = 100
DEFAULT_MAX_KEEPALIVE = 20
ERROR_BODY_LIMIT = 64 * 1024  # bytes of an error body we read before giving up on it


@dataclass(slots=True)
class RequestSpec:
    """What to send: built by a provider adapter, sent by the base provider."""

    method: str
    path: str
    json: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)


def make_timeout(timeout: float | httpx.Timeout | None) -> httpx.Timeout:
    if isinstance(timeout, httpx.Timeout):
        return timeout
    if timeout is None:
        return httpx.Timeout(None, connect=DEFAULT_CONNECT_TIMEOUT)
    return httpx.Timeout(timeout, connect=min(timeout, DEFAULT_CONNECT_TIMEOUT))


_PROXY_VARS = ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "https_proxy", "http_proxy", "all_proxy")


def make_client(
    timeout: float | httpx.Timeout | None,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
    max_keepalive: int = DEFAULT_MAX_KEEPALIVE,
) -> httpx.AsyncClient:
    """A client of our own, never following redirects (a key never follows one).

    The transport is StreamTransport (fast with many live streams). With a proxy set in
    the environment, httpx's own transport and proxy handling are used; with
    N3_HTTP_TRANSPORT=httpx, httpx's pool split into shards (ShardedTransport)."""
    limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_keepalive)
    if any(os.environ.get(v) for v in _PROXY_VARS):
        return httpx.AsyncClient(
            timeout=make_timeout(timeout), limits=limits, follow_redirects=False, trust_env=True
        )
    transport: httpx.AsyncBaseTransport
    if os.environ.get(TRANSPORT_ENV, "").strip().lower() == "httpx":
        transport = ShardedTransport(max_connections, max_keepalive)
    else:
        transport = StreamTransport(max_connections, max_keepalive)
    return httpx.AsyncClient(
        timeout=make_timeout(timeout), transport=transport, follow_redirects=False, trust_env=False
    )


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
