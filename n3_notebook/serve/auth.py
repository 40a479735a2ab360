"""Bearer-token authentication as a pure ASGI middleware."""

from __future__ import annotations

import hmac
from typing import Any

from .errors import error_body
from .sse import dumps


class BearerAuth:
    """Pure ASGI middleware: `Authorization: Bearer <token>` on every route but /healthz,
    compared in constant time; 401 otherwise (the token is never echoed)."""

    def __init__(self, app: Any, token: str) -> None:
        self.app = app
        self.token = token.encode()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        root = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root) :]
        if path == "/healthz" or self._ok(scope):
            await self.app(scope, receive, send)
            return
        body = dumps(
            error_body("unauthorized", "a valid `Authorization: Bearer <token>` is needed")
        )
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", b"%d" % len(body)),
                    (b"www-authenticate", b"Bearer"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    def _ok(self, scope: Any) -> bool:
        value = b""
        for name, v in scope.get("headers", ()):
            if name == b"authorization":
                value = v
                break
        scheme, _, given = value.partition(b" ")
        ok = hmac.compare_digest(given.strip(), self.token)
        return ok and scheme.lower() == b"bearer"


__all__ = ["BearerAuth"]
