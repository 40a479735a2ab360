"""An app served by uvicorn in a daemon thread with its own event loop: what `%chain serve`
uses inside a kernel (the kernel's loop stays free), and what tests use.

    with BackgroundServer(create_app(chains), port=0) as server:
        print(server.url)
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import threading
import time
from typing import Any

import uvicorn

from ..netutil import listening_socket
from .app import create_app
from .exposure import check_exposure
from .protocol import guarded_protocol
from .settings import INSECURE_ENV, Limits

START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0


class BackgroundServer:
    def __init__(
        self,
        app: Any,
        host: str = "127.0.0.1",
        port: int = 0,
        timeout_graceful_shutdown: int | None = 5,
        log_level: str = "warning",
    ) -> None:
        self.app = app
        self.host = host
        self.requested_port = port
        self.port = 0
        self.timeout_graceful_shutdown = timeout_graceful_shutdown
        self.log_level = log_level
        self.loop: asyncio.AbstractEventLoop | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> BackgroundServer:
        state = getattr(getattr(self.app, "state", None), "n3", None)
        limits = state.limits if state is not None else Limits.from_env()
        sock = listening_socket(self.host, self.requested_port)
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            http=guarded_protocol(limits),
            timeout_keep_alive=limits.keepalive_timeout,  # type: ignore[arg-type]
            log_config=None,
            log_level=self.log_level,
            access_log=False,
            lifespan="on",
            loop="asyncio",
            ws="none",
            backlog=2048,
            timeout_graceful_shutdown=self.timeout_graceful_shutdown,
        )
        server = uvicorn.Server(config)
        self._server, self._sock = server, sock
        thread = threading.Thread(
            target=self._serve, args=(server, sock), name=f"n3-serve:{self.port}", daemon=True
        )
        self._thread = thread
        thread.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                self._cleanup()
                raise RuntimeError(f"the server did not start: {self._error!r}")
            time.sleep(0.005)
        return self

    def _serve(self, server: uvicorn.Server, sock: socket.socket) -> None:
        try:
            asyncio.run(self._main(server, sock))
        except BaseException as exc:  # pragma: no cover - reported by start()
            self._error = exc

    async def _main(self, server: uvicorn.Server, sock: socket.socket) -> None:
        self.loop = asyncio.get_running_loop()
        await server.serve(sockets=[sock])

    def call(self, fn: Any, *args: Any) -> None:
        """Run fn(*args) on the server's loop (e.g. the app's lifecycle.begin_drain)."""
        if self.loop is not None:
            self.loop.call_soon_threadsafe(fn, *args)

    def stop(self, force: bool = False) -> None:
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.should_exit = True
        if force:
            server.force_exit = True
        thread.join(STOP_TIMEOUT)
        if thread.is_alive():  # pragma: no cover - defensive
            server.force_exit = True
            thread.join(STOP_TIMEOUT)
        self._cleanup()

    def _cleanup(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
        self._server = self._thread = self._sock = None

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<BackgroundServer {self.url} {'running' if self.running else 'stopped'}>"


_served: dict[str, BackgroundServer] = {}


def serve_chain(
    name: str,
    chain: Any,
    port: int = 0,
    host: str = "127.0.0.1",
    namespace: dict[str, Any] | None = None,
    default_model: str | None = None,
) -> BackgroundServer:
    """Serve one chain in the background of this process (`%chain serve NAME`). Serving a
    name again replaces its server (so a redefined chain is picked up); port 0 picks a
    free port. Beyond loopback it needs a token (N3_SERVE_TOKEN, N3_SERVE_TOKEN_FILE) or
    N3_SERVE_INSECURE_NO_AUTH=1."""
    stop_chain(name)
    app = create_app({name: chain}, namespace=namespace, default_model=default_model)
    insecure = os.environ.get(INSECURE_ENV, "") not in ("", "0")
    check_exposure(host, bool(app.state.n3.token_names), insecure)
    server = BackgroundServer(app, host=host, port=port).start()
    _served[name] = server
    return server


def stop_chain(name: str) -> bool:
    """Stop the background server of `name`; False if there is none."""
    server = _served.pop(name, None)
    if server is None:
        return False
    server.stop()
    return True


def served() -> dict[str, BackgroundServer]:
    return dict(_served)
