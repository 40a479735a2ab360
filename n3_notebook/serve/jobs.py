"""Running one request: admission, disconnects, graceful shutdown, writing.

A Job is the ASGI response of /run, /stream and /v1/generate*. Its work (a coroutine given
an Output) runs in a task of its own; a second small task waits for the client to go away.

- Client disconnect: the work task is cancelled. Cancellation runs the chain engine's and
  the providers' `finally` blocks, which close every upstream connection of the request,
  and the response waits for that before it returns.
- Admission: a worker serves at most `max_concurrent` jobs; one more is a 503 with
  Retry-After, answered at once (a load balancer or client retries elsewhere).
- Graceful shutdown (Lifecycle.begin_drain, called on SIGTERM/SIGINT): new jobs get 503,
  /healthz says "draining", running jobs may finish for `grace_period` seconds; then each
  is stopped: its work is cancelled (upstream closed) and a stream ends with an `error`
  event of type "shutdown" and the final `done` event, a non-streaming request with 503.
- Wall clock: a job still running `request_timeout` seconds after it started is stopped
  the same way: 504 of type "request_timeout", or a stream's `error` event and `done`.
- Writing: the work's own task writes (a token costs no task switch); a slow client
  makes its send wait, which slows that request's upstream reads and nobody else's.
  Body messages go straight to the send the metrics middleware was given, past
  Starlette's per-message wrappers (which only watch http.response.start)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any

from starlette.responses import Response

from ..core.redact import redact
from .errors import ServeError, error_body, from_exception
from .metrics import RAW_SEND_KEY, T0_KEY, ServiceMetrics, label
from .pacing import LoadPacer
from .sse import dumps, encode_event

logger = logging.getLogger("n3_notebook.serve")

SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]
SHUTDOWN_MESSAGE = "the server is shutting down; the request was stopped after the grace period"
REQUEST_TIMEOUT = "request_timeout"

Work = Callable[["Output"], Coroutine[Any, Any, None]]


class Lifecycle:
    """The jobs of one app, its concurrency limit, its draining state and its pacer."""

    def __init__(
        self,
        max_concurrent: int,
        grace_period: float,
        pacer: LoadPacer | None = None,
        request_timeout: float | None = None,
    ) -> None:
        if max_concurrent < 1:
            raise ValueError("max_concurrent_per_worker must be at least 1")
        if grace_period < 0:
            raise ValueError("grace_period must not be negative")
        self.max_concurrent = max_concurrent
        self.grace_period = grace_period
        self.request_timeout = request_timeout
        self.running: set[Job] = set()
        self.pacer = pacer or LoadPacer()
        self.draining = False
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._restore: list[tuple[int, Any, Any]] = []

    def begin_drain(self, grace: float | None = None) -> None:
        """Stop taking jobs; stop the running ones after `grace` seconds (default: the
        app's grace period). Idempotent; must run on the app's loop."""
        if self.draining:
            return
        self.draining = True
        grace = self.grace_period if grace is None else grace
        logger.info("draining: %d running request(s), grace period %.1fs", len(self.running), grace)
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(grace, self.stop_all, "shutdown")

    def stop_all(self, reason: str = "shutdown") -> None:
        if self.running:
            logger.warning("stopping %d running request(s): %s", len(self.running), reason)
        for job in list(self.running):
            job.stop(reason)

    async def close(self, timeout: float = 5.0) -> None:
        """At lifespan shutdown: stop what still runs and wait (bounded) for it to end."""
        self.draining = True
        if self._timer is not None:
            self._timer.cancel()
        self.stop_all("shutdown")
        tasks = [job._task for job in self.running if job._task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)
        self.pacer.stop()
        self.uninstall_signal_hook()

    # -- SIGTERM / SIGINT ------------------------------------------------------------
    def install_signal_hook(self) -> bool:
        """Begin draining on SIGTERM/SIGINT, then hand the signal on to the server's own
        handler (uvicorn's, which stops accepting and waits for connections to finish).
        Only from the main thread (where servers install theirs); False elsewhere."""
        if threading.current_thread() is not threading.main_thread():
            return False
        self._loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous = signal.getsignal(sig)

            def handler(signum: int, frame: Any, previous: Any = previous) -> None:
                loop = self._loop
                if loop is not None and not loop.is_closed():
                    loop.call_soon_threadsafe(self.begin_drain)
                if callable(previous):
                    previous(signum, frame)
                elif previous == signal.SIG_DFL:
                    signal.signal(signum, signal.SIG_DFL)
                    signal.raise_signal(signum)

            signal.signal(sig, handler)
            self._restore.append((sig, handler, previous))
        return True

    def uninstall_signal_hook(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for sig, handler, previous in reversed(self._restore):
            if signal.getsignal(sig) is handler:
                signal.signal(sig, previous)
        self._restore.clear()


class ClientGone(Exception):
    """Writing failed: the client has gone away."""


class Output:
    """What a job's work writes: one JSON answer (json/error), or an SSE stream (start_sse,
    then event ... and flush). The work's own task writes, so a token costs no extra task
    switch; events added between two flushes go out in one body message."""

    __slots__ = (
        "_raw_send",
        "_send",
        "buf",
        "error_body",
        "final",
        "first_token_at",
        "gone",
        "metrics",
        "next_id",
        "pacer",
        "route",
        "sse",
        "start",
        "started",
        "stream_error",
        "t0",
    )

    def __init__(
        self,
        send: Any,
        raw_send: Any,
        metrics: ServiceMetrics | None,
        route: str,
        t0: float,
        pacer: LoadPacer | None = None,
    ) -> None:
        self._send = send
        self._raw_send = raw_send
        self.metrics = metrics
        self.pacer = pacer
        self.route = route
        self.t0 = t0
        self.buf = bytearray()
        self.start: dict[str, Any] | None = None
        self.final: bytes | None = None
        self.sse = False
        self.started = False
        self.gone = False
        self.next_id = 1
        self.first_token_at: float | None = None
        #: The JSON body of an error answer (the OpenAI-compatible routes use OpenAI's shape).
        self.error_body: Callable[[ServeError], Any] = ServeError.body
        #: How an error ends a stream that has begun (None: `error` and `done` events).
        self.stream_error: Callable[[ServeError], None] | None = None

    # -- for the work --------------------------------------------------------------
    def json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        """The whole answer (the work returns after this; the job sends it)."""
        body = dumps(payload)
        raw = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        raw += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]
        self.start = {"type": "http.response.start", "status": status, "headers": raw}
        self.final = body

    def error(self, err: ServeError) -> None:
        self.json(err.status, self.error_body(err), err.headers)

    def data(self, chunk: bytes) -> None:
        """Raw bytes of the stream (already framed), sent with the next flush."""
        self.buf += chunk

    def start_sse(self, headers: dict[str, str] | None = None) -> None:
        self.sse = True
        raw = SSE_HEADERS
        if headers:
            raw = raw + [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
        self.start = {"type": "http.response.start", "status": 200, "headers": raw}
        if self.metrics is not None:
            self.metrics.streams.inc()

    def event(self, event: str, data: Any) -> None:
        self.buf += encode_event(self.next_id, event, data)
        self.next_id += 1

    def first_token(self) -> None:
        if self.first_token_at is None:
            self.first_token_at = time.perf_counter()
            if self.metrics is not None:
                self.metrics.ttft.labels(self.route).observe(self.first_token_at - self.t0)

    async def flush(self) -> None:
        """Send the headers (once) and every event added since the last flush; then, while
        the worker is busy, wait the pacer's delay so the next read gathers more (see
        pacing.py). Raises ClientGone if the client went away."""
        await self._send_pending()
        # Only once the first token is out: time to first token is never paced.
        if self.pacer is not None and self.pacer.delay and self.first_token_at is not None:
            await asyncio.sleep(self.pacer.delay)

    async def _send_pending(self) -> None:
        if self.start is not None and self.final is None:
            start, self.start = self.start, None
            await self._write(self._send, start)
            self.started = True
        if self.buf and self.started:
            data = bytes(self.buf)
            self.buf.clear()
            await self._write(
                self._raw_send, {"type": "http.response.body", "body": data, "more_body": True}
            )

    async def _write(self, send: Any, message: dict[str, Any]) -> None:
        if self.gone:
            raise ClientGone
        try:
            await send(message)
        except (OSError, RuntimeError) as exc:
            logger.debug("send failed: %s", redact(str(exc)))
            self.gone = True
            raise ClientGone from None

    async def finish(self) -> None:
        """After the work: a pending JSON answer, or the rest of the stream and its end."""
        if self.final is not None:
            start, self.start = self.start, None
            await self._write(self._send, start)  # type: ignore[arg-type]
            self.started = True
            await self._write(self._raw_send, {"type": "http.response.body", "body": self.final})
            return
        await self._send_pending()
        if self.started:
            await self._write(self._raw_send, {"type": "http.response.body", "body": b""})


class Job(Response):
    """The ASGI response that runs `work` under the app's Lifecycle (see module docstring)."""

    def __init__(
        self,
        lifecycle: Lifecycle,
        work: Work,
        metrics: ServiceMetrics | None = None,
        route: str = "",
    ) -> None:
        self.lifecycle = lifecycle
        self.work = work
        self.metrics = metrics
        self.route = label(route)
        self.status_code = 200
        self.background = None
        self.raw_headers = []
        self.body = b""
        self.stop_reason: str | None = None
        self._task: asyncio.Task[None] | None = None

    def stop(self, reason: str) -> None:
        """Cancel the work; the answer ends saying why (unless the client is gone)."""
        if self.stop_reason is None:
            self.stop_reason = reason
        if self._task is not None and not self._task.done():
            self._task.cancel()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        lc = self.lifecycle
        if lc.draining:
            await _send_json(
                send,
                ServeError(
                    503,
                    "shutting_down",
                    "the server is shutting down",
                    {"connection": "close", "retry-after": "1"},
                ),
            )
            return
        if len(lc.running) >= lc.max_concurrent:
            await _send_json(
                send,
                ServeError(
                    503,
                    "overloaded",
                    f"this worker is serving its limit of {lc.max_concurrent} concurrent requests",
                    {"retry-after": "1"},
                ),
            )
            return
        loop = asyncio.get_running_loop()
        # Body messages skip the per-message wrappers between the metrics middleware and
        # here (they only look at http.response.start, which takes the normal way).
        out = Output(
            send,
            scope.get(RAW_SEND_KEY) or send,
            self.metrics,
            self.route,
            scope.get(T0_KEY) or time.perf_counter(),
            lc.pacer,
        )
        task = self._task = loop.create_task(self.work(out))
        watcher = loop.create_task(self._watch(receive, task, out))
        timer = None
        if lc.request_timeout is not None:
            timer = loop.call_later(lc.request_timeout, self.stop, REQUEST_TIMEOUT)
        lc.running.add(self)
        try:
            await asyncio.wait((task,))
        except asyncio.CancelledError:  # the server gave up on us (its own backstop)
            task.cancel()
            raise
        finally:
            lc.running.discard(self)
            watcher.cancel()
            if timer is not None:
                timer.cancel()
            if not task.done():
                task.cancel()
            # Every upstream connection of this request is closed when the work has ended.
            with contextlib.suppress(BaseException):
                await asyncio.shield(_settle(task))
            if out.sse and self.metrics is not None:
                self.metrics.streams.dec()
        await self._end(task, out)

    async def _watch(self, receive: Any, task: asyncio.Task[None], out: Output) -> None:
        try:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    break
        except Exception:  # nosec B110  # the server cannot tell us any more: the client is gone
            pass
        out.gone = True
        task.cancel()

    async def _end(self, task: asyncio.Task[None], out: Output) -> None:
        if out.gone:
            return
        err: ServeError | None = None
        if task.cancelled():
            reason = self.stop_reason or "cancelled"
            if reason == REQUEST_TIMEOUT:
                err = ServeError(
                    504,
                    reason,
                    f"the request ran longer than this server's limit of "
                    f"{self.lifecycle.request_timeout:g} s (N3_SERVE_REQUEST_TIMEOUT)",
                )
            else:
                err = ServeError(
                    503,
                    reason,
                    SHUTDOWN_MESSAGE if reason == "shutdown" else reason,
                    {"retry-after": "1"},
                )
        else:
            exc = task.exception()
            if isinstance(exc, ClientGone):
                return
            if exc is not None:
                err = from_exception(exc)
                if err.type == "internal_error":
                    logger.error(
                        "request failed: %s: %s", type(exc).__name__, redact(str(exc)), exc_info=exc
                    )
        try:
            if err is not None and not out.started and out.final is None:
                out.error(err)
            elif err is not None and out.sse and out.stream_error is not None:
                out.stream_error(err)
            elif err is not None and out.sse:
                out.event("error", err.body())
                out.event("done", {"ok": False, "reason": err.type})
            elif err is None and out.start is None and not out.started:
                out.error(ServeError(500, "internal_error", "the request produced no answer"))
            await out.finish()
        except ClientGone:
            pass


async def _settle(task: asyncio.Task[None]) -> None:
    with contextlib.suppress(BaseException):
        await task


async def _send_json(send: Any, err: ServeError) -> None:
    body = dumps(err.body())
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    headers += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in err.headers.items()]
    with contextlib.suppress(OSError, RuntimeError):
        await send({"type": "http.response.start", "status": err.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def json_error(err: ServeError) -> Response:
    """A plain (non-job) JSON error response."""
    return Response(dumps(err.body()), err.status, err.headers, media_type="application/json")


__all__ = ["ClientGone", "Job", "Lifecycle", "Output", "error_body", "json_error"]
