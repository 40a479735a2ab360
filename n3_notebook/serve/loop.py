"""The service workers' event loop: uvloop when installed, with a listening socket that
accepts every pending connection when it becomes readable.

Why: libuv (under uvloop) accepts one connection per readiness of the listening socket
(libuv PR #3696), so a worker whose loop iterations are long, because it relays thousands
of live streams, accepts one client per iteration: under a ramp of thousands of streams,
most connections wait in the kernel's accept queue and their first token comes seconds late
although each request, once accepted, is quick (benchmarks/results/design-figures.md).
asyncio's own loop accepts up to 100 connections at once but costs more per read and
write; this keeps uvloop's I/O and accepts in batches.

uvicorn takes the factory as its `loop` setting (`n3_notebook.serve.loop:new_event_loop`);
servers on a given socket (what uvicorn's workers use) get the accepting listener; other
create_server calls are uvloop's own."""

from __future__ import annotations

import asyncio
import functools
import logging
import socket
from collections.abc import Callable
from typing import Any

logger = logging.getLogger("n3_notebook.serve")

#: Connections accepted per readiness of the listening socket. Bounded, so that when several
#: workers share the socket, a busy one (long loop iterations) takes fewer than an idle one.
ACCEPT_BATCH = 64
#: Seconds to stop accepting after the process ran out of file descriptors (as asyncio does).
ACCEPT_RETRY_DELAY = 1.0
FACTORY = "n3_notebook.serve.loop:new_event_loop"


class AcceptAllServer(asyncio.AbstractServer):
    """A listening socket served by `loop.add_reader`: on each readiness, up to ACCEPT_BATCH
    connections are accepted and handed to `loop.connect_accepted_socket`."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        sock: socket.socket,
        backlog: int,
    ) -> None:
        self._loop = loop
        self._factory = protocol_factory
        self._sock = sock
        self._serving = False
        self._closed = loop.create_future()
        self._pending: set[asyncio.Task[Any]] = set()
        sock.setblocking(False)
        sock.listen(max(1, backlog))
        self._start()

    # -- accepting -------------------------------------------------------------------
    def _start(self) -> None:
        if not self._serving and not self._closed.done():
            self._serving = True
            self._loop.add_reader(self._sock.fileno(), self._accept)

    def _stop(self) -> None:
        if self._serving:
            self._serving = False
            self._loop.remove_reader(self._sock.fileno())

    def _accept(self) -> None:
        for _ in range(ACCEPT_BATCH):
            try:
                conn, _ = self._sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:
                continue
            except OSError as exc:  # EMFILE, ENFILE, ENOBUFS, ENOMEM: back off a moment
                logger.error("accept failed (%s); retrying in %.0f s", exc, ACCEPT_RETRY_DELAY)
                self._stop()
                self._loop.call_later(ACCEPT_RETRY_DELAY, self._start)
                return
            conn.setblocking(False)
            task = self._loop.create_task(self._loop.connect_accepted_socket(self._factory, conn))
            self._pending.add(task)
            task.add_done_callback(self._connected)

    def _connected(self, task: asyncio.Task[Any]) -> None:
        self._pending.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.warning("a connection could not be set up: %s", task.exception())

    # -- asyncio.AbstractServer ------------------------------------------------------
    def close(self) -> None:
        self._stop()
        if not self._closed.done():
            self._closed.set_result(None)
            self._sock.close()

    def get_loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def is_serving(self) -> bool:
        return self._serving

    @property
    def sockets(self) -> tuple[socket.socket, ...]:
        return () if self._closed.done() else (self._sock,)

    async def start_serving(self) -> None:
        self._start()

    async def serve_forever(self) -> None:
        self._start()
        await self.wait_closed()

    async def wait_closed(self) -> None:
        await asyncio.shield(self._closed)


def _accepting_loop_class(base: type[asyncio.AbstractEventLoop]) -> type:
    class AcceptingLoop(base):  # type: ignore[valid-type,misc]
        async def create_server(
            self, protocol_factory: Any, host: Any = None, port: Any = None, **kwargs: Any
        ) -> asyncio.AbstractServer:
            sock = kwargs.get("sock")
            if sock is not None and not isinstance(sock, socket.socket):
                sock = getattr(sock, "sock", None)  # gunicorn's listener wraps the socket
            if (
                not isinstance(sock, socket.socket)
                or kwargs.get("ssl") is not None
                or sock.family not in (socket.AF_INET, socket.AF_INET6)
                or kwargs.get("start_serving", True) is False
            ):
                server: asyncio.AbstractServer = await super().create_server(
                    protocol_factory, host, port, **kwargs
                )
                return server
            return AcceptAllServer(self, protocol_factory, sock, kwargs.get("backlog", 100))

    return AcceptingLoop


@functools.cache
def _uvloop_class() -> type | None:
    try:  # an optional dependency (the serve extra, not on Windows)
        import uvloop
    except ImportError:
        return None
    return _accepting_loop_class(uvloop.Loop)


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop with the accept-all listener, or asyncio's loop if uvloop is not installed."""
    cls = _uvloop_class()
    return asyncio.new_event_loop() if cls is None else cls()


__all__ = ["FACTORY", "AcceptAllServer", "new_event_loop"]
