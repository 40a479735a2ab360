"""Run the emulator: uvicorn on 127.0.0.1 in a daemon thread with its own event loop."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import socket
import threading
import time
from types import TracebackType

import uvicorn

from ..netutil import listening_socket
from .auth import ApiKeys, KeyPolicy
from .chat import ServerState
from .models import PROVIDERS, delays_from_env
from .recorder import RequestRecord
from .server import create_app
from .streaming import install_log_filter

__all__ = ["OFFLINE_API_KEY", "Emulator", "get_offline_emulator", "run_emulator"]

#: The key offline mode sends to the emulator (any non-empty key is accepted by default).
OFFLINE_API_KEY = "n3-offline-dummy-key"

_START_TIMEOUT = 10.0
_STOP_TIMEOUT = 5.0
_CUT_TIMEOUT = 0.5


class Emulator:
    """One emulator server.  Use ``with``/``async with`` (or ``start()``/``stop()``)."""

    def __init__(
        self,
        token_delay: float | None = None,
        first_token_delay: float | None = None,
        api_keys: ApiKeys = None,
        port: int = 0,
        host: str = "127.0.0.1",
        requests_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
    ) -> None:
        env_token, env_first = delays_from_env()
        self._state = ServerState(
            keys=KeyPolicy(api_keys),
            token_delay=token_delay if token_delay is not None else env_token,
            first_token_delay=first_token_delay if first_token_delay is not None else env_first,
        )
        self._state.budget.configure(requests_per_minute, tokens_per_minute)
        self.host = host
        self._requested_port = port
        self.port = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self._lifecycle = threading.Lock()
        self._error: BaseException | None = None

    # -- lifecycle -----------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> Emulator:
        with self._lifecycle:
            if self.running:
                return self
            install_log_filter()
            sock = listening_socket(self.host, self._requested_port)
            self.port = sock.getsockname()[1]
            config = uvicorn.Config(
                create_app(self._state),
                log_config=None,
                log_level="warning",
                access_log=False,
                lifespan="off",
                loop="asyncio",
                ws="none",
                timeout_keep_alive=30,
                backlog=2048,
            )
            server = uvicorn.Server(config)
            self._server, self._socket, self._error = server, sock, None
            thread = threading.Thread(
                target=self._serve,
                args=(server, sock),
                name=f"n3-emulator:{self.port}",
                daemon=True,
            )
            self._thread = thread
            thread.start()
            deadline = time.monotonic() + _START_TIMEOUT
            while not server.started:
                if not thread.is_alive() or time.monotonic() > deadline:
                    self._cleanup()
                    raise RuntimeError(f"emulator failed to start: {self._error!r}")
                time.sleep(0.005)
            return self

    def _serve(self, server: uvicorn.Server, sock: socket.socket) -> None:
        try:
            asyncio.run(server.serve(sockets=[sock]))
        except BaseException as exc:  # pragma: no cover - reported by start()
            self._error = exc

    def stop(self, *, cut: bool = False) -> None:
        """Stop serving. Streams still open are cut instead of waited for; with `cut`,
        so is every request still being handled, and the server thread (a daemon) gets
        _CUT_TIMEOUT to end: what a terminated process wants, since a backlog of requests
        its clients already gave up on is not worth finishing before it exits."""
        with self._lifecycle:
            server, thread = self._server, self._thread
            if server is None or thread is None:
                return
            if cut or self._state.recorder.open_count():
                server.force_exit = True
            server.should_exit = True
            thread.join(_CUT_TIMEOUT if cut else _STOP_TIMEOUT)
            if thread.is_alive() and not cut:  # pragma: no cover - defensive
                server.force_exit = True
                thread.join(_STOP_TIMEOUT)
            self._cleanup()

    def _cleanup(self) -> None:
        if self._socket is not None:
            with contextlib.suppress(OSError):
                self._socket.close()
        self._server = self._thread = self._socket = None

    close = stop

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> Emulator:
        return await asyncio.to_thread(self.start)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.stop)

    # -- addresses -----------------------------------------------------------------
    @property
    def base_urls(self) -> dict[str, str]:
        """What each official SDK takes as its base URL / host."""
        root = f"http://{self.host}:{self.port}"
        return {p: f"{root}/v1" if p == "openai" else root for p in PROVIDERS}

    def base_url(self, provider: str) -> str:
        try:
            return self.base_urls[provider]
        except KeyError:
            raise ValueError(
                f"unknown provider {provider!r}; expected one of {', '.join(PROVIDERS)}"
            ) from None

    # -- observation ---------------------------------------------------------------
    @property
    def records(self) -> list[RequestRecord]:
        """Copies of the request records, in arrival order."""
        return self._state.recorder.snapshot()

    def reset(self) -> None:
        """Forget the records, the fault counters and what the budgets have spent."""
        self._state.recorder.clear()
        self._state.counters.reset()
        self._state.budget.reset()

    def set_rate_limits(
        self,
        requests_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
        burst_seconds: float = 60.0,
    ) -> None:
        """Enforce per-minute budgets per provider and model (None: no such budget),
        each holding at most `burst_seconds` worth: a request over budget is answered 429,
        and OpenAI / Anthropic answers carry the budget headers (see emulator/budget.py)."""
        self._state.budget.configure(requests_per_minute, tokens_per_minute, burst_seconds)

    def set_batch_seconds(self, seconds: float) -> None:
        """How long a batch job takes before it ends (the fast clock; default 1 s)."""
        if not seconds >= 0:
            raise ValueError(f"seconds must be >= 0, got {seconds!r}")
        self._state.batches.batch_seconds = seconds

    @property
    def rate_limited(self) -> int:
        """How many requests the budgets refused (429) since start or reset()."""
        return self._state.budget.refused

    def open_connections(self) -> int:
        """Requests whose response has not finished or closed yet."""
        return self._state.recorder.open_count()

    async def wait_for_close(
        self, record_or_index: RequestRecord | int = -1, timeout: float = 2.0
    ) -> RequestRecord:
        return await self._state.recorder.wait_for_close(record_or_index, timeout)

    def wait_for_close_sync(
        self, record_or_index: RequestRecord | int = -1, timeout: float = 2.0
    ) -> RequestRecord:
        return self._state.recorder.wait_for_close_sync(record_or_index, timeout)

    def set_pacing(
        self, token_delay: float | None = None, first_token_delay: float | None = None
    ) -> None:
        """Change the pacing overrides of a running emulator (None = the model's own)."""
        with self._state.lock:
            self._state.token_delay = token_delay
            self._state.first_token_delay = first_token_delay

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<Emulator {self.host}:{self.port} {state}>"


def run_emulator(
    token_delay: float | None = None,
    first_token_delay: float | None = None,
    api_keys: ApiKeys = None,
    port: int = 0,
    host: str = "127.0.0.1",
    requests_per_minute: float | None = None,
    tokens_per_minute: float | None = None,
) -> Emulator:
    """An emulator to use as ``with run_emulator() as emu:`` or ``async with``."""
    return Emulator(
        token_delay,
        first_token_delay,
        api_keys,
        port,
        host,
        requests_per_minute=requests_per_minute,
        tokens_per_minute=tokens_per_minute,
    )


_offline: Emulator | None = None
_offline_lock = threading.Lock()


def get_offline_emulator() -> Emulator:
    """The process-wide emulator used by offline mode, started on first use."""
    global _offline
    with _offline_lock:
        if _offline is None or not _offline.running:
            emulator = Emulator()
            emulator.start()
            if _offline is None:
                atexit.register(_stop_offline)
            _offline = emulator
        return _offline


def _stop_offline() -> None:
    with _offline_lock:
        if _offline is not None:
            _offline.stop()
