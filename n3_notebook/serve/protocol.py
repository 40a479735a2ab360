"""uvicorn's httptools protocol with bounds on each request's head: its size, its number
of headers, and the time a client takes to send it.

uvicorn bounds none of these for httptools (its `h11_max_incomplete_event_size` only
applies to h11), and it sets no timer before a connection's first request: a client that
connects and sends nothing, or drips its headers a byte at a time, holds a connection
(and its file descriptor) for ever. Here:

- header_timeout: from the connection (and from the end of each answer on a kept-alive
  connection) the request line and headers must be in within this many seconds; a silent
  connection is then closed, one that sent part of a head gets 408 and is closed.
- max_header_bytes: the request line and headers, in bytes; max_headers: their number.
  Past either, 431 and the connection is closed; the app never sees the request.

`uvicorn.Config(http=...)` takes this class (or the import string PROTOCOL); the CLI and
the gunicorn worker use it. The bounds come from `limits` (a class attribute, set by
`guarded_protocol(limits)`) or, when that is None, from the N3_SERVE_* environment."""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

import httptools
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from .errors import error_body
from .headers import add_security_headers
from .settings import Limits, limit_env
from .sse import dumps

PROTOCOL = "n3_notebook.serve.protocol:GuardedHttpToolsProtocol"


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    limits: ClassVar[Limits | None] = None
    _env_limits: ClassVar[Limits | None] = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        limits = self.connection_limits()
        self._max_head = limits.max_header_bytes
        self._max_headers = limits.max_headers
        self._head_timeout = limits.header_timeout
        self._head_timer: asyncio.TimerHandle | None = None
        self._in_head = True
        self._head_bytes = 0
        self._head_fields = 0
        self._head_field_bytes = 0
        self._message_done = False
        self._refused = False

    @classmethod
    def connection_limits(cls) -> Limits:
        if cls.limits is not None:
            return cls.limits
        if cls._env_limits is None:
            cls._env_limits = Limits.from_env()
        return cls._env_limits

    # -- the head's clock ----------------------------------------------------------
    def _arm(self) -> None:
        self._disarm()
        self._in_head = True
        self._head_bytes = self._head_fields = self._head_field_bytes = 0
        self._head_timer = self.loop.call_later(self._head_timeout, self._head_timed_out)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport is None or self.transport.is_closing() or not self._in_head:
            return
        if self._head_bytes:
            self._refuse(
                408,
                "request_timeout",
                f"the request's headers did not arrive within {self._head_timeout:g} s "
                f"({limit_env('header_timeout')})",
            )
        else:
            self.transport.close()

    # -- uvicorn's protocol --------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self._in_head:
            self._head_bytes += len(data)
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        except httptools.HttpParserError:
            if not self._refused:
                msg = "Invalid HTTP request received."
                self.logger.warning(msg)
                self.send_400_response(msg)
            return
        if self._in_head and self._head_bytes > self._max_head:
            self._refuse_head()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._message_done = False
        if self._head_timer is None:
            self._arm()

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_fields += 1
        self._head_field_bytes += len(name) + len(value) + 4
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._disarm()
        if (
            self._head_fields > self._max_headers
            or self._head_field_bytes + len(self.url) > self._max_head
        ):
            self._refuse_head()
            raise _Refused  # stops the parser: the app never sees this request
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._message_done = True
        if self.cycle is not None and self.cycle.response_complete:
            self._next_head()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._message_done:
            self._next_head()

    def _next_head(self) -> None:
        """The clock for the next request's head, once this one's body and answer are done
        (an answer sent before its body was read leaves the body to arrive first)."""
        if not self.transport.is_closing() and not self.pipeline:
            self._arm()

    # -- refusing ------------------------------------------------------------------
    def _refuse_head(self) -> None:
        self._refuse(
            431,
            "headers_too_large",
            f"the request's headers are over this server's limit of {self._max_head} bytes "
            f"or {self._max_headers} fields ({limit_env('max_header_bytes')}, "
            f"{limit_env('max_headers')})",
        )

    def _refuse(self, status: int, kind: str, message: str) -> None:
        """Answer with a JSON error and close the connection (the app is not involved)."""
        self._refused = True
        self._disarm()
        body = dumps(error_body(kind, message))
        headers = add_security_headers(
            [
                (b"content-type", b"application/json"),
                (b"content-length", b"%d" % len(body)),
                (b"connection", b"close"),
            ]
        )
        head = b"".join(b"%s: %s\r\n" % h for h in headers)
        self.transport.write(STATUS_LINE[status] + head + b"\r\n" + body)
        self.transport.close()


class _Refused(Exception):
    """Raised from a parser callback to stop parsing a refused request."""


def guarded_protocol(limits: Limits) -> type[GuardedHttpToolsProtocol]:
    """The protocol class with these bounds (for servers in this process; workers in
    other processes take PROTOCOL and read the environment)."""
    return type("GuardedHttpToolsProtocol", (GuardedHttpToolsProtocol,), {"limits": limits})


__all__ = ["PROTOCOL", "GuardedHttpToolsProtocol", "guarded_protocol"]
