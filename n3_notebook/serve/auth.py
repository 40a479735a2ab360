"""Bearer-token authentication and per-token concurrency, as a pure ASGI middleware.

Every route but /healthz needs `Authorization: Bearer <token>`; the given token is
compared with every accepted one in constant time (no early exit, so the timing does not
tell which one came close). The request's scope then carries the token's name under
TOKEN_NAME_KEY (the access log and the metrics read it; the token itself goes nowhere).
A token with its limit of requests running gets 429 with Retry-After, before any work."""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from typing import Any

from .errors import error_body
from .sse import dumps
from .tokens import ApiToken

#: Where the name of the token that authenticated a request is left in its ASGI scope.
TOKEN_NAME_KEY = "n3.token"  # nosec B105  # a scope key; it holds a name, not a token
RETRY_AFTER = b"1"


class BearerAuth:
    """Pure ASGI middleware: the token check and each token's count of running requests."""

    def __init__(
        self, app: Any, tokens: Sequence[ApiToken] | str, max_concurrent_per_token: int = 100
    ) -> None:
        self.app = app
        if isinstance(tokens, str):
            tokens = [ApiToken("default", tokens)]
        self._tokens = [
            (t.token.encode(), t.name, t.max_concurrent or max_concurrent_per_token) for t in tokens
        ]
        if not self._tokens:
            raise ValueError("BearerAuth needs at least one token")
        #: token name -> requests running now (in this worker)
        self.running: dict[str, int] = {}

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        root = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root) :]
        if path == "/healthz":
            await self.app(scope, receive, send)
            return
        match = self._match(scope)
        if match is None:
            await _refuse(
                send,
                401,
                "unauthorized",
                "a valid `Authorization: Bearer <token>` is needed",
                [(b"www-authenticate", b"Bearer")],
            )
            return
        name, limit = match
        scope[TOKEN_NAME_KEY] = name
        running = self.running.get(name, 0)
        if running >= limit:
            await _refuse(
                send,
                429,
                "too_many_requests",
                f"token {name!r} already has {limit} requests running, its limit on this "
                "worker; retry when one has ended",
                [(b"retry-after", RETRY_AFTER)],
            )
            return
        self.running[name] = running + 1
        try:
            await self.app(scope, receive, send)
        finally:
            left = self.running[name] - 1
            if left:
                self.running[name] = left
            else:
                del self.running[name]

    def _match(self, scope: Any) -> tuple[str, int] | None:
        value = b""
        for header, v in scope.get("headers", ()):
            if header == b"authorization":
                value = v
                break
        scheme, _, given = value.partition(b" ")
        given = given.strip()
        found: tuple[str, int] | None = None
        for secret, name, limit in self._tokens:  # every one compared: constant time
            if hmac.compare_digest(given, secret) and found is None:
                found = (name, limit)
        if scheme.lower() != b"bearer":
            return None
        return found


async def _refuse(
    send: Any, status: int, kind: str, message: str, extra: list[tuple[bytes, bytes]]
) -> None:
    body = dumps(error_body(kind, message))
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", b"%d" % len(body)),
                *extra,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


__all__ = ["TOKEN_NAME_KEY", "BearerAuth"]
