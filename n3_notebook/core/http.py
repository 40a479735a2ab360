"""The HTTP side of a provider: client construction, pool limits, request specs."""

from __future__ import annotations

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


def make_client(
    timeout: float | httpx.Timeout | None,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
    max_keepalive: int = DEFAULT_MAX_KEEPALIVE,
    verify: VerifyTypes = True,
) -> httpx.AsyncClient:
    """A client of our own on AiohttpTransport, never following redirects (a key never
    follows one). TLS trust and proxies come from `verify` and the environment (see
    core/tls.py and core/proxy.py); httpx's own environment handling stays off."""
    transport = AiohttpTransport(max_connections, max_keepalive, verify=verify)
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
