"""The workers' event loop: uvloop with a listener that accepts pending connections in
batches (libuv alone accepts one per loop iteration, which starves a busy worker)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time

import pytest

from n3_notebook.serve import loop as serve_loop

uvloop = pytest.importorskip("uvloop")

PENDING = 300


def _run(main):
    with asyncio.Runner(loop_factory=serve_loop.new_event_loop) as runner:
        return runner.run(main())


def _connect_many(port: int, n: int) -> list[socket.socket]:
    clients = []
    for _ in range(n):
        c = socket.socket()
        c.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            c.connect(("127.0.0.1", port))
        clients.append(c)
    time.sleep(0.2)  # the kernel completes the handshakes; they wait in the accept queue
    return clients


class _Count(asyncio.Protocol):
    made = 0
    got = b""

    def connection_made(self, transport):
        _Count.made += 1
        self.transport = transport

    def data_received(self, data):
        _Count.got += data
        self.transport.write(data.upper())


def test_a_busy_worker_accepts_a_burst_in_a_few_iterations():
    _Count.made = 0

    async def main():
        loop = asyncio.get_running_loop()
        assert isinstance(loop, uvloop.Loop)
        listener = socket.create_server(("127.0.0.1", 0))
        server = await loop.create_server(_Count, sock=listener, backlog=1024)
        assert isinstance(server, serve_loop.AcceptAllServer) and server.is_serving()
        clients = _connect_many(listener.getsockname()[1], PENDING)
        iterations = 0
        while _Count.made < PENDING and iterations < 50:
            time.sleep(0.01)  # noqa: ASYNC251 - a busy worker: long loop iterations
            await asyncio.sleep(0)
            iterations += 1
        server.close()
        await server.wait_closed()
        for c in clients:
            c.close()
        return iterations

    iterations = _run(main)
    assert _Count.made == PENDING
    # one batch per iteration at most; plain uvloop would need PENDING iterations
    assert iterations <= 3 * PENDING // serve_loop.ACCEPT_BATCH + 2


def test_accepted_connections_talk_and_close_stops_accepting():
    _Count.got = b""

    async def main():
        loop = asyncio.get_running_loop()
        listener = socket.create_server(("127.0.0.1", 0))
        port = listener.getsockname()[1]
        server = await loop.create_server(_Count, sock=listener, backlog=16)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"ping")
        assert await reader.readexactly(4) == b"PING"
        writer.close()
        server.close()
        await server.wait_closed()
        assert not server.is_serving() and server.sockets == ()
        with pytest.raises(OSError):
            await asyncio.open_connection("127.0.0.1", port)

    _run(main)
    assert _Count.got == b"ping"


def test_other_servers_are_uvloops_own():
    async def main():
        loop = asyncio.get_running_loop()
        server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
        assert not isinstance(server, serve_loop.AcceptAllServer)
        server.close()
        await server.wait_closed()

    _run(main)
