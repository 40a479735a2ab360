"""Listening sockets for the servers we run in-process (the emulator, `%chain serve`)."""

from __future__ import annotations

import socket


def listening_socket(host: str, port: int) -> socket.socket:
    """A bound TCP socket for uvicorn's `serve(sockets=[...])`: address reuse, not inherited
    by child processes, and TCP_NODELAY, which accepted connections inherit; without it a
    response written as head then body waits for the client's delayed ACK on every
    kept-alive request (benchmarks/results/design-figures.md)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(False)
    return sock
