"""wake_on_sigint in this process: a real SIGINT cancels an awaiting task at once, and the
previous handler is back afterwards; BusyWhileRunning's bookkeeping on a stand-in kernel."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from typing import Any

import pytest

from n3_notebook.jupyter.interrupt import interrupted, wake_on_sigint
from n3_notebook.jupyter.status import BusyWhileRunning

pytestmark = pytest.mark.skipif(
    threading.current_thread() is not threading.main_thread(), reason="signals: main thread"
)


async def test_sigint_cancels_the_awaiting_task_at_once() -> None:
    before = signal.getsignal(signal.SIGINT)
    seen: list[bool] = []

    async def cell() -> None:
        with wake_on_sigint():
            try:
                await asyncio.sleep(30)  # nothing will wake the loop for 30 s
            except asyncio.CancelledError:
                seen.append(interrupted())
                raise

    task = asyncio.ensure_future(cell())
    await asyncio.sleep(0.05)
    sent = time.monotonic()
    # from another thread, as the OS may deliver it: the loop must still wake
    threading.Timer(0, os.kill, (os.getpid(), signal.SIGINT)).start()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - sent < 1.0
    assert seen == [True]
    assert signal.getsignal(signal.SIGINT) is before


async def test_the_previous_python_handler_is_what_runs() -> None:
    calls: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: calls.append(signum))
    try:
        with wake_on_sigint():
            os.kill(os.getpid(), signal.SIGINT)
            await asyncio.sleep(0.2)
        assert calls == [signal.SIGINT]  # the kernel's handler decides what to cancel
    finally:
        signal.signal(signal.SIGINT, previous)


class FakeKernel:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str | None]] = []
        self.parents: dict[str, dict[str, Any]] = {}

    def get_parent(self, channel: str) -> dict[str, Any]:
        return self.parents.get(channel, {})

    def _publish_status(self, status: str, channel: str, parent: Any = None) -> None:
        p = parent or self.get_parent(channel)
        self.sent.append((status, p.get("header", {}).get("msg_id")))


class FakeEvents:
    def __init__(self) -> None:
        self.callbacks: dict[str, list[Any]] = {}

    def register(self, event: str, cb: Any) -> None:
        self.callbacks.setdefault(event, []).append(cb)

    def unregister(self, event: str, cb: Any) -> None:
        self.callbacks[event].remove(cb)


def msg(msg_id: str, msg_type: str) -> dict[str, Any]:
    return {"header": {"msg_id": msg_id, "msg_type": msg_type}}


def test_an_idle_for_another_request_is_followed_by_busy() -> None:
    kernel = FakeKernel()
    shell = type("Shell", (), {"kernel": kernel, "events": FakeEvents()})()
    keeper = BusyWhileRunning(shell)
    assert keeper.install() and not keeper.install()
    kernel.parents["shell"] = msg("cell", "execute_request")
    kernel._publish_status("busy", "shell")
    keeper.started()
    kernel.parents["control"] = msg("sub", "create_subshell_request")
    kernel._publish_status("busy", "control")
    kernel._publish_status("idle", "control")
    keeper.started()  # the cell runs a cell of its own (shell.run_cell)
    keeper.ended()
    kernel._publish_status("idle", "control")
    keeper.ended()
    kernel._publish_status("idle", "shell")
    assert kernel.sent == [
        ("busy", "cell"),
        ("busy", "sub"),
        ("idle", "sub"),
        ("busy", "cell"),  # the indicator goes back to busy at once
        ("idle", "sub"),
        ("busy", "cell"),  # still running after the inner cell ended
        ("idle", "cell"),
    ]
    keeper.uninstall()
    assert "_publish_status" not in vars(kernel) and shell.events.callbacks == {
        "pre_execute": [],
        "post_execute": [],
    }
