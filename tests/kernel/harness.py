"""Driving a real ipykernel through jupyter_client, as a notebook frontend would."""

from __future__ import annotations

import os
import queue
import time
from dataclasses import dataclass, field
from typing import Any

from jupyter_client.manager import KernelManager


@dataclass
class Execution:
    msg_id: str
    outputs: list[dict[str, Any]] = field(default_factory=list)
    widget_updates: list[tuple[float, str, dict[str, Any]]] = field(default_factory=list)
    comm_opens: list[dict[str, Any]] = field(default_factory=list)
    status: str | None = None
    done: bool = False
    error: dict[str, Any] | None = None

    def text(self) -> str:
        parts = []
        for o in self.outputs:
            if o["msg_type"] == "stream":
                parts.append(o["content"]["text"])
            elif o["msg_type"] in ("execute_result", "display_data"):
                parts.append(o["content"]["data"].get("text/plain", ""))
            elif o["msg_type"] == "error":
                parts.append("\n".join(o["content"]["traceback"]))
        return "".join(parts)

    def data(self, mime: str) -> list[Any]:
        return [
            o["content"]["data"][mime]
            for o in self.outputs
            if o["msg_type"] in ("execute_result", "display_data") and mime in o["content"]["data"]
        ]

    def model_ids(self, model_name: str) -> list[str]:
        return [
            c["comm_id"]
            for c in self.comm_opens
            if c["data"].get("state", {}).get("_model_name") == model_name
        ]


class Kernel:
    """One kernel, its client, and a loop that routes iopub messages to executions."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        kernel_env = dict(os.environ)
        kernel_env.update(env or {})
        self.km = KernelManager(kernel_name="python3")
        self.km.start_kernel(env=kernel_env)
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=60)
        self.executions: dict[str, Execution] = {}
        self.comms: dict[str, dict[str, Any]] = {}
        #: every status message in arrival order: (state, parent msg_id, parent msg_type)
        self.statuses: list[tuple[str, str | None, str | None]] = []

    def close(self) -> None:
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)

    def submit(self, code: str) -> Execution:
        msg_id = self.kc.execute(code, allow_stdin=False)
        ex = Execution(msg_id)
        self.executions[msg_id] = ex
        return ex

    def pump(self, timeout: float = 0.05) -> None:
        """Read whatever iopub messages are there (for up to `timeout` seconds)."""
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            try:
                msg = self.kc.get_iopub_msg(timeout=max(left, 0.001))
            except queue.Empty:
                return
            self._route(msg)
            if time.monotonic() >= end:
                return

    def _route(self, msg: dict[str, Any]) -> None:
        parent = msg.get("parent_header", {}).get("msg_id")
        kind = msg["msg_type"]
        content = msg["content"]
        ex = self.executions.get(parent)
        if kind == "status":
            parent_type = msg.get("parent_header", {}).get("msg_type")
            self.statuses.append((content["execution_state"], parent, parent_type))
        if kind == "comm_open":
            self.comms[content["comm_id"]] = content
            if ex:
                ex.comm_opens.append(content)
            return
        if kind == "comm_msg":
            if ex is not None:
                ex.widget_updates.append((time.monotonic(), content["comm_id"], content["data"]))
            else:
                # updates sent from background tasks may carry another parent; keep them
                for e in self.executions.values():
                    if not e.done:
                        e.widget_updates.append(
                            (time.monotonic(), content["comm_id"], content["data"])
                        )
            return
        if ex is None:
            return
        if kind == "status" and content["execution_state"] == "idle":
            ex.done = True
        elif kind in ("stream", "display_data", "execute_result", "error", "update_display_data"):
            ex.outputs.append({"msg_type": kind, "content": content})
            if kind == "error":
                ex.error = content

    def wait(self, ex: Execution, timeout: float = 30.0) -> Execution:
        end = time.monotonic() + timeout
        while not ex.done:
            if time.monotonic() > end:
                raise TimeoutError(f"cell did not finish in {timeout}s: {ex.text()[-500:]}")
            self.pump(0.05)
        reply = self.kc.get_shell_msg(timeout=10)
        while reply["parent_header"].get("msg_id") != ex.msg_id:
            reply = self.kc.get_shell_msg(timeout=10)
        ex.status = reply["content"]["status"]
        return ex

    def run(self, code: str, timeout: float = 30.0) -> Execution:
        return self.wait(self.submit(code), timeout)

    def click(self, comm_id: str) -> None:
        """What a browser sends when a Button widget is clicked."""
        content = {"comm_id": comm_id, "data": {"method": "custom", "content": {"event": "click"}}}
        msg = self.kc.session.msg("comm_msg", content)
        self.kc.shell_channel.send(msg)

    def control(self, msg_type: str, content: dict[str, Any] | None = None) -> str:
        """Send a control request (as JupyterLab does while a cell runs); its msg_id."""
        msg = self.kc.session.msg(msg_type, content or {})
        self.kc.control_channel.send(msg)
        return msg["header"]["msg_id"]

    def interrupt(self) -> None:
        self.km.interrupt_kernel()
