"""A handle on a running request, comparison or chain: awaitable, cancellable, inspectable."""

from __future__ import annotations

import asyncio
from collections.abc import Generator
from typing import Any, Protocol

from .interrupt import wake_on_sigint

__all__ = ["LLMHandle", "Partial"]


class Partial(Protocol):
    """What keeps the part of an answer that arrived (a StreamRun)."""

    @property
    def response(self) -> Any: ...


class LLMHandle:
    """What a `--background` cell returns: `await h`, `h.cancel()`, `h.done()`, `h.result()`."""

    def __init__(self, task: asyncio.Future[Any], label: str, run: Partial | None = None) -> None:
        self.task = task
        self.label = label
        self.run = run  # has .response: what arrived, also after a cancel

    def cancel(self) -> bool:
        """Stop the request now (its connection is closed). True if it was still running."""
        return self.task.cancel()

    def done(self) -> bool:
        return self.task.done()

    def _partial(self) -> Any:
        return self.run.response if self.run is not None else None

    def result(self) -> Any:
        """The LLMResponse (or result object); raises if not done yet or if it failed."""
        if not self.task.done():
            raise asyncio.InvalidStateError(f"{self.label} is still running; use `await h`")
        if self.task.cancelled():
            return self._partial()
        return self.task.result()

    def __await__(self) -> Generator[Any, None, Any]:
        return self._wait().__await__()

    async def _wait(self) -> Any:
        try:
            with wake_on_sigint():  # `await h` in a cell stops at once on an interrupt
                return await asyncio.shield(self.task)
        except asyncio.CancelledError:
            me = asyncio.current_task()
            if self.task.cancelled() and not (me is not None and me.cancelling()):
                return self._partial()  # the request was cancelled
            raise  # the awaiting code itself was cancelled (e.g. a kernel interrupt)

    def __repr__(self) -> str:
        if not self.task.done():
            state = "running"
        elif self.task.cancelled():
            state = "cancelled"
        elif self.task.exception() is not None:
            state = "failed"
        else:
            state = "done"
        return f"<n3_notebook request {self.label}: {state}>"
