"""LLMHandle: what a --background cell returns."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from n3_notebook.jupyter.handle import LLMHandle


async def _slow(result="done"):
    await asyncio.sleep(10)
    return result


async def test_cancel_then_await_gives_what_arrived():
    run = SimpleNamespace(response="partial answer")
    h = LLMHandle(asyncio.ensure_future(_slow()), "openai:gpt-4o-mini", run)
    assert "running" in repr(h) and not h.done()
    with pytest.raises(asyncio.InvalidStateError):
        h.result()
    assert h.cancel() is True
    assert await h == "partial answer"
    assert h.done() and h.result() == "partial answer" and "cancelled" in repr(h)


async def test_result_when_done():
    h = LLMHandle(asyncio.ensure_future(asyncio.sleep(0, result="answer")), "m")
    assert await h == "answer" and h.result() == "answer" and "done" in repr(h)


async def test_awaiting_task_interrupted_is_not_swallowed():
    """A kernel interrupt of the cell awaiting the handle must propagate, also when the
    request is cancelled at the same moment."""
    run = SimpleNamespace(response="partial")
    h = LLMHandle(asyncio.ensure_future(_slow()), "m", run)

    async def cell():
        return await h

    waiter = asyncio.ensure_future(cell())
    await asyncio.sleep(0.01)
    h.cancel()
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter


async def test_failure_propagates():
    async def boom():
        raise ValueError("bad")

    h = LLMHandle(asyncio.ensure_future(boom()), "m")
    with pytest.raises(ValueError):
        await h
    assert "failed" in repr(h)
