"""Run a coroutine to completion from synchronous code, even inside a running loop.

The coroutine runs on a private event loop in a worker thread; the caller's loop (a Jupyter
kernel's, say) is never nested or blocked from re-entering. Ctrl-C in the caller cancels
the coroutine and the KeyboardInterrupt propagates."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run_sync(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run factory() on a fresh loop in a worker thread and return its result.

    `factory` is called inside the worker, so everything loop-bound (an httpx client, a
    semaphore) is created on the loop that uses it."""
    result: dict[str, Any] = {}
    ready = threading.Event()
    # Waited on instead of Thread.join: a KeyboardInterrupt that lands inside join() on
    # Python 3.11 can leave the Thread looking finished while its loop still runs.
    finished = threading.Event()
    holder: dict[str, Any] = {}

    def worker() -> None:
        loop = asyncio.new_event_loop()
        try:
            task = loop.create_task(factory())
            holder["loop"], holder["task"] = loop, task
            ready.set()
            try:
                result["value"] = loop.run_until_complete(task)
            except BaseException as exc:  # re-raised in the caller's thread
                result["error"] = exc
            finally:
                loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            ready.set()
            loop.close()
            finished.set()

    # the caller's context goes along (e.g. the notebook cell a call log entry names)
    context = contextvars.copy_context()
    thread = threading.Thread(target=context.run, args=(worker,), name="n3-sync", daemon=True)
    thread.start()
    try:
        while not finished.wait(0.05):
            pass
    except KeyboardInterrupt:
        ready.wait()
        loop, task = holder.get("loop"), holder.get("task")
        if loop is not None and task is not None and not loop.is_closed():
            loop.call_soon_threadsafe(task.cancel)
        finished.wait(5.0)
        raise
    if "error" in result:
        raise result["error"]
    value: T = result["value"]
    return value
