"""Starting a cell's work: one task, one handle, background or awaited, interrupt-ready.

Every cell runner (%%llm, comparisons, %%chain) ends the same way: its work runs as a task
on the kernel's loop, a handle on it is tracked (for `%llm cancel`), a `--background` cell
returns the handle at once, and an awaited cell stops within a loop iteration of a kernel
interrupt, ending with a short message instead of a CancelledError trace."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, Protocol, TypeVar

from .errors import CellError
from .handle import LLMHandle, Partial
from .interrupt import interrupted, wake_on_sigint

__all__ = ["HandleTracker", "interrupted_error", "launch"]

T = TypeVar("T")


class HandleTracker(Protocol):
    """Where running handles are kept (the notebook session)."""

    def track(self, handle: LLMHandle) -> None: ...


def interrupted_error(output: str | None) -> CellError:
    """The short message an interrupted cell ends with (instead of a CancelledError trace)."""
    kept = f"`{output}` and `%llm last`" if output else "`%llm last`"
    return CellError(
        f"interrupted: the request was cancelled and its connection closed. What arrived is "
        f"kept in {kept}.",
        "KeyboardInterrupt",
    )


async def launch(
    tracker: HandleTracker,
    work: Coroutine[Any, Any, T],
    label: str,
    *,
    background: bool,
    output: str | None = None,
    run: Partial | None = None,
    on_cancel: Callable[[Callable[[], bool]], None] | None = None,
    on_done: Callable[[asyncio.Task[T]], None] | None = None,
) -> LLMHandle | None:
    """Run `work` as a task. `on_cancel` receives the handle's cancel (for Cancel buttons);
    `on_done` runs when the task ends, however it ends (it keeps and shows the result).
    Returns the handle for a background cell. Otherwise waits (SIGINT wakes the loop) and
    returns None, also when a Cancel button stopped the work; raises the short
    "interrupted" CellError when the cell itself was interrupted, and whatever the work
    raised."""
    task: asyncio.Task[T] = asyncio.ensure_future(work)
    handle = LLMHandle(task, label, run)
    if on_cancel is not None:
        on_cancel(handle.cancel)
    tracker.track(handle)
    if on_done is not None:
        task.add_done_callback(on_done)
    if background:
        return handle
    with wake_on_sigint():
        try:
            await task
        except asyncio.CancelledError:
            if interrupted():
                raise interrupted_error(output) from None
            # a Cancel button: the cell ends cleanly
    return None
