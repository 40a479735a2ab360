"""The request body's bounds as a pure ASGI middleware: its size and the time to send it.

- A `content-length` above the limit is answered 413 before the app runs, without reading
  any of the body, and the connection is closed (so the server does not go on reading the
  rest of it).
- A body without a length (chunked) is counted as it arrives: 413 once it passes the limit.
- The whole body must arrive within `body_timeout` seconds of its headers: 408 otherwise.

Both answers carry `connection: close`. Why not Starlette's RequestBodyLimitMiddleware:
it answers in plain text rather than the service's JSON error shape, lets the app run on a
content-length it already knows is too large, and leaves the connection open, so the
server keeps reading (and dropping) the rest of a refused 400 MB body; and it has no
read timeout."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from starlette.exceptions import HTTPException

from .errors import error_body
from .settings import limit_env
from .sse import dumps

CLOSE = {"connection": "close"}


class BodyTooLarge(HTTPException):
    """The body passed the limit (413); the app's HTTPException handler answers it as JSON."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            413,
            f"the request body is larger than this server's limit of {limit} bytes "
            f"({limit_env('max_body_bytes')}); send a smaller body",
            CLOSE,
        )


class BodyTimeout(HTTPException):
    """The body did not arrive in time (408)."""

    def __init__(self, timeout: float) -> None:
        super().__init__(
            408,
            f"the request body did not arrive within {timeout:g} s "
            f"({limit_env('body_timeout')}); send it at once",
            CLOSE,
        )


ERROR_TYPES = {408: "request_timeout", 413: "body_too_large"}


class BodyLimit:
    """Pure ASGI middleware: at most `max_bytes` of body, all of it within `timeout` s."""

    def __init__(self, app: Any, max_bytes: int, timeout: float) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout = timeout

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = _content_length(scope)
        if length is not None and length > self.max_bytes:
            await send_http_error(send, BodyTooLarge(self.max_bytes))
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        limit = self.max_bytes
        received = 0
        done = False
        started = False

        async def limited_receive() -> Any:
            nonlocal received, done
            if done:
                return await receive()
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise BodyTimeout(self.timeout) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
                done = not message.get("more_body", False)
            else:
                done = True
            return message

        async def watched_send(message: Any) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, watched_send)
        except (BodyTooLarge, BodyTimeout) as exc:
            if started:
                raise
            await send_http_error(send, exc)


def _content_length(scope: Any) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the HTTP parser refuses a malformed length before we run
    return None


async def send_http_error(send: Any, exc: HTTPException) -> None:
    """Answer `exc` in the service's JSON error shape, straight on the ASGI send."""
    kind = ERROR_TYPES.get(exc.status_code, "http_error")
    body = dumps(error_body(kind, str(exc.detail)))
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    headers += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in (exc.headers or {}).items()]
    with contextlib.suppress(OSError, RuntimeError):
        await send({"type": "http.response.start", "status": exc.status_code, "headers": headers})
        await send({"type": "http.response.body", "body": body})


__all__ = ["ERROR_TYPES", "BodyLimit", "BodyTimeout", "BodyTooLarge", "send_http_error"]
