"""Keeping the kernel's status "busy" on IOPub for as long as a cell runs.

A frontend shows the kernel's status from the last status message on IOPub, whatever
request it answers. While a cell runs, ipykernel (7.x) still handles control requests in
its control thread (JupyterLab sends `create_subshell_request` and `debug_request` there
when a cell starts), and each is answered with busy, then idle: JupyterLab then reads
"Idle" while the cell is at [*] and streaming. (The server's own list of such message types,
`untracked_message_types`, leaves out the subshell requests.) So while an execute request
runs, every idle published for another request is followed at once by a busy for the
running execute request: the indicator ends on Busy until the cell's own idle. Status
messages stay paired per request, so a client waiting for a request's idle still gets it.

Hand-written because ipykernel offers no hook between publishing a status and the next
one; this wraps the kernel's `_publish_status` for this kernel instance only, and does
nothing on a kernel without it."""

from __future__ import annotations

import contextlib
import threading
from typing import Any

__all__ = ["BusyWhileRunning"]

_PUBLISH = "_publish_status"


def _msg_id(message: Any) -> str | None:
    if not isinstance(message, dict):
        return None
    header = message.get("header")
    return header.get("msg_id") if isinstance(header, dict) else None


class BusyWhileRunning:
    """Installed on one kernel by the extension; `uninstall()` puts everything back."""

    def __init__(self, shell: Any) -> None:
        self.shell = shell
        self.kernel: Any = getattr(shell, "kernel", None)
        self._publish: Any = None
        self._running: dict[str, Any] | None = None
        self._depth = 0
        self._lock = threading.Lock()

    @property
    def installed(self) -> bool:
        return self._publish is not None

    def install(self) -> bool:
        """Wrap the kernel's status publishing; False when this kernel has none."""
        publish = getattr(self.kernel, _PUBLISH, None)
        get_parent = getattr(self.kernel, "get_parent", None)
        if self.installed or not callable(publish) or not callable(get_parent):
            return False
        self._publish = publish
        setattr(self.kernel, _PUBLISH, self.publish)
        self.shell.events.register("pre_execute", self.started)
        self.shell.events.register("post_execute", self.ended)
        return True

    def uninstall(self) -> None:
        if not self.installed:
            return
        if self.kernel.__dict__.get(_PUBLISH) == self.publish:
            delattr(self.kernel, _PUBLISH)
        for event, callback in (("pre_execute", self.started), ("post_execute", self.ended)):
            with contextlib.suppress(ValueError):
                self.shell.events.unregister(event, callback)
        self._publish = None
        self._running = None
        self._depth = 0

    def started(self) -> None:
        """pre_execute: remember the execute request this cell answers (main thread only:
        a subshell's cell runs in its own thread and keeps its own status)."""
        if threading.current_thread() is not threading.main_thread():
            return
        parent = self.kernel.get_parent("shell")
        header = parent.get("header") if isinstance(parent, dict) else None
        executes = isinstance(header, dict) and header.get("msg_type") == "execute_request"
        with self._lock:
            self._depth += 1  # a cell may run code that runs cells (shell.run_cell)
            if self._depth == 1 and executes:
                self._running = parent

    def ended(self) -> None:
        """post_execute: from here on the cell's own idle may come."""
        if threading.current_thread() is not threading.main_thread():
            return
        with self._lock:
            self._depth = max(self._depth - 1, 0)
            if self._depth == 0:
                self._running = None

    def publish(self, status: str, channel: str, parent: Any = None) -> None:
        """The kernel's _publish_status, then busy again for a running cell."""
        with self._lock:
            self._publish(status, channel, parent)
            running = self._running
            if status != "idle" or running is None:
                return
            answered = parent or self.kernel.get_parent(channel)
            if _msg_id(answered) != _msg_id(running):
                self._publish("busy", "shell", running)
