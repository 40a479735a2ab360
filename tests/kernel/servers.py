"""Loopback servers that hold a client in one phase of a request, for the interrupt tests:
one that accepts and never answers (waiting for headers; over https, the TLS handshake),
one whose accept queue is full (connecting), one that answers 429 with a long retry-after
(sleeping before a retry). Each records its connections and when the client closed them."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from dataclasses import dataclass


@dataclass
class Connection:
    opened_at: float
    closed_at: float | None = None
    requests: int = 0


class RawServer:
    """A threaded TCP server on 127.0.0.1. `reply` None: read forever, never write.
    `reply` bytes: answer each request with it and keep the connection open."""

    def __init__(self, reply: bytes | None = None) -> None:
        self.reply = reply
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.connections: list[Connection] = []
        self._lock = threading.Lock()
        self._stop = False
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def url(self, scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            record = Connection(time.monotonic())
            with self._lock:
                self.connections.append(record)
            threading.Thread(target=self._serve, args=(conn, record), daemon=True).start()

    def _serve(self, conn: socket.socket, record: Connection) -> None:
        with conn:
            buffer = b""
            while True:
                try:
                    data = conn.recv(65536)
                except OSError:
                    break
                if not data:
                    break
                buffer += data
                if self.reply is not None and b"\r\n\r\n" in buffer:
                    buffer = b""
                    record.requests += 1
                    with contextlib.suppress(OSError):
                        conn.sendall(self.reply)
        record.closed_at = time.monotonic()

    def open_connections(self) -> int:
        with self._lock:
            return sum(1 for c in self.connections if c.closed_at is None)

    def requests(self) -> int:
        with self._lock:
            return sum(c.requests for c in self.connections)

    def close(self) -> None:
        self._stop = True
        self.sock.close()


def rate_limited(retry_after: int) -> bytes:
    body = b'{"error": "rate limited: slow down"}'
    return (
        b"HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\n"
        + f"retry-after: {retry_after}\r\ncontent-length: {len(body)}\r\n\r\n".encode()
        + body
    )


class FullBacklog:
    """A listening socket whose accept queue is full: a new client's SYN is dropped, so
    its connect() waits (and retries) until it gives up."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(0)
        self.port = self.sock.getsockname()[1]
        self.fillers: list[socket.socket] = []
        for _ in range(4):
            s = socket.socket()
            s.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                s.connect(("127.0.0.1", self.port))
            self.fillers.append(s)
        time.sleep(0.1)

    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        for s in self.fillers:
            s.close()
        self.sock.close()
