"""Paced responses: write frames on a schedule, apply in-stream faults, notice disconnects.

``PacedResponse`` is a Starlette response whose body comes from a *producer* coroutine.
While the producer runs, a second task waits on the ASGI ``receive`` channel for
``http.disconnect``; the moment it arrives the request record is closed (with
``client_disconnected=True``) and the producer is cancelled.  This is what lets a test
assert that the server saw a cancelled stream close within a few milliseconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from .faults import Fault
from .models import Pacing
from .recorder import Recorder, RequestRecord

__all__ = [
    "RECORD_SCOPE_KEY",
    "EmulatedDisconnect",
    "PacedResponse",
    "StreamPlan",
    "Writer",
    "install_log_filter",
    "produce_body",
    "produce_stream",
]

RECORD_SCOPE_KEY = "n3_emulator.record"
RECORDER_SCOPE_KEY = "n3_emulator.recorder"


class EmulatedDisconnect(Exception):
    """Raised after a partial body so that uvicorn drops the connection abruptly."""


class _DropEmulatedDisconnect(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, EmulatedDisconnect)


_FILTER = _DropEmulatedDisconnect()


def install_log_filter() -> None:
    """Keep uvicorn from logging a traceback for every deliberate ``disconnect`` fault."""
    logger = logging.getLogger("uvicorn.error")
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)


@dataclass
class StreamPlan:
    """The frames of one streamed answer, already encoded in the provider's format."""

    head: list[bytes] = field(default_factory=list)  # before the first token
    tokens: list[bytes] = field(default_factory=list)  # one frame per content token
    tail: list[bytes] = field(default_factory=list)  # finish / usage / sentinel frames
    error: list[bytes] = field(default_factory=list)  # in-band error (midstream_error)
    malformed: bytes = b'data: {"choices": [tr\n\n'


class Writer:
    """Sends body frames; the response start goes out lazily with the first frame."""

    def __init__(
        self,
        send: Send,
        status: int,
        raw_headers: list[tuple[bytes, bytes]],
        recorder: Recorder | None,
        record: RequestRecord | None,
    ) -> None:
        self._send = send
        self._status = status
        self._headers = raw_headers
        self._recorder = recorder
        self._record = record
        self._started = False

    async def _start(self) -> None:
        if not self._started:
            self._started = True
            await self._send(
                {"type": "http.response.start", "status": self._status, "headers": self._headers}
            )

    async def write(self, data: bytes, *, token: bool = False) -> None:
        await self._start()
        if token and self._recorder is not None and self._record is not None:
            self._recorder.count_token(self._record)  # before the send, like the chunk count
        await self._send({"type": "http.response.body", "body": data, "more_body": True})

    async def finish(self) -> None:
        await self._start()
        await self._send({"type": "http.response.body", "body": b"", "more_body": False})


Producer = Callable[[Writer], Awaitable[None]]


async def _wait_for_disconnect(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


class PacedResponse(Response):
    def __init__(
        self,
        producer: Producer,
        *,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        media_type: str | None = None,
    ) -> None:
        self.producer = producer
        self.status_code = status_code
        self.media_type = media_type
        self.background = None
        self.init_headers(headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        record: RequestRecord | None = scope.get(RECORD_SCOPE_KEY)
        recorder: Recorder | None = scope.get(RECORDER_SCOPE_KEY)
        writer = Writer(send, self.status_code, self.raw_headers, recorder, record)
        produce = asyncio.ensure_future(self.producer(writer))
        watch = asyncio.ensure_future(_wait_for_disconnect(receive))
        try:
            await asyncio.wait({produce, watch}, return_when=asyncio.FIRST_COMPLETED)
            if watch.done():  # the client went away (the response is not complete yet)
                if recorder is not None and record is not None:
                    recorder.close(record, client_disconnected=True)
                return
            watch.cancel()
            produce.result()  # re-raises EmulatedDisconnect and real errors
            await writer.finish()
        finally:
            for task in (produce, watch):
                if not task.done():
                    task.cancel()
            for task in (produce, watch):
                with contextlib.suppress(BaseException):
                    await task


class _Clock:
    """Deadline-based pacing, so that many tokens do not accumulate sleep drift."""

    def __init__(self, pacing: Pacing) -> None:
        self.pacing = pacing
        self.base = time.monotonic()
        self.index = 0

    async def before_token(self) -> None:
        due = self.base + self.pacing.first_token_delay + self.index * self.pacing.token_delay
        self.index += 1
        await asyncio.sleep(max(0.0, due - time.monotonic()))

    async def stall(self, seconds: float) -> None:
        start = time.monotonic()
        await asyncio.sleep(seconds)
        self.base += time.monotonic() - start


async def produce_stream(
    writer: Writer, plan: StreamPlan, pacing: Pacing, fault: Fault | None = None
) -> None:
    """Write a StreamPlan with pacing, applying an in-stream fault after K tokens."""
    active = fault if fault is not None and fault.in_stream else None
    clock = _Clock(pacing)
    for frame in plan.head:
        await writer.write(frame)
    count = len(plan.tokens)
    for index in range(count + 1):
        if active is not None and index == min(active.after, count):
            if active.name == "stall":
                await clock.stall(active.seconds)
            elif active.name == "midstream_error":
                for frame in plan.error:
                    await writer.write(frame)
                return
            elif active.name == "disconnect":
                raise EmulatedDisconnect(f"disconnect after {index} chunks")
            elif active.name == "malformed":
                await writer.write(plan.malformed)
            active = None
        if index == count:
            break
        await clock.before_token()
        await writer.write(plan.tokens[index], token=True)
    for frame in plan.tail:
        await writer.write(frame)


async def produce_body(
    writer: Writer,
    body: bytes,
    delay: float,
    *,
    cut: str | None = None,
) -> None:
    """Write a whole body after ``delay``; with ``cut="disconnect"`` only its first half."""
    if delay > 0:
        await asyncio.sleep(delay)
    if cut == "disconnect":
        await writer.write(body[: max(1, len(body) // 2)])
        raise EmulatedDisconnect("disconnect in the middle of a body")
    await writer.write(body)
