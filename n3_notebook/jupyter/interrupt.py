"""Waking the kernel's loop on SIGINT while a cell awaits, so an interrupt stops it at once.

ipykernel turns SIGINT during an awaiting cell into a cancellation of the cell, but its
handler only queues a callback on the loop without waking it (ipython/ipykernel#881): the
loop sits in select() until some I/O arrives, so a cell waiting for a model's first token
ended seconds after the interrupt. While one of our cells awaits, `wake_on_sigint()` hands
SIGINT to the loop's own signal handling (`loop.add_signal_handler`: the C-level handler
writes to the loop's self-pipe, so select() returns whichever thread the signal reached),
and from the loop runs what the kernel would have run: its previous Python handler
(ipykernel's, which cancels the cell), or, when that is Python's default (a KeyboardInterrupt
raised wherever the loop happens to be), a cancellation of the cell's task. The previous
handler and wakeup fd are put back when the cell ends.

Hand-written because no library does this for a loop someone else owns: asyncio offers the
mechanism, but restoring the kernel's handler afterwards is ours to do."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

__all__ = ["interrupted", "wake_on_sigint"]

_Handler = Callable[[int, FrameType | None], Any] | int | None


def interrupted() -> bool:
    """True when the running task was cancelled itself (a kernel interrupt), as opposed to
    a task it awaits being cancelled (a Cancel button, `%llm cancel`)."""
    me = asyncio.current_task()
    return me is not None and me.cancelling() > 0


def _owned_by_a_loop(handler: _Handler) -> bool:
    # asyncio's placeholder handler: some loop already turns SIGINT into a callback
    return getattr(handler, "__module__", None) == "asyncio.unix_events"


@contextlib.contextmanager
def wake_on_sigint(task: asyncio.Task[Any] | None = None) -> Iterator[None]:
    """While the block runs, SIGINT wakes the running loop and interrupts `task` (default:
    the current task) within one loop iteration. A no-op where signals cannot be handled
    (not the main thread, Windows' proactor loop) or another loop already handles SIGINT."""
    loop = asyncio.get_running_loop()
    target = task if task is not None else asyncio.current_task()
    if target is None or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous: _Handler = signal.getsignal(signal.SIGINT)
    if _owned_by_a_loop(previous):
        yield
        return

    def deliver() -> None:
        if callable(previous) and previous is not signal.default_int_handler:
            previous(signal.SIGINT, None)  # the kernel's own handler: cancels the cell
        elif not target.done():
            target.cancel()

    wakeup_fd = signal.set_wakeup_fd(-1)
    signal.set_wakeup_fd(wakeup_fd)
    try:
        loop.add_signal_handler(signal.SIGINT, deliver)
    except (NotImplementedError, RuntimeError, ValueError):
        yield  # signals unavailable here: the kernel's handler stays as it was
        return
    try:
        yield
    finally:
        loop.remove_signal_handler(signal.SIGINT)
        if previous is not None:  # None: a handler not set from Python; keep the default
            signal.signal(signal.SIGINT, previous)
        with contextlib.suppress(ValueError, OSError):
            signal.set_wakeup_fd(wakeup_fd)
