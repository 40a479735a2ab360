"""The kernel's status reads busy for as long as a cell runs, also when control requests
(JupyterLab's create_subshell_request, debug_request) are answered meanwhile: a frontend
shows the last status message, whatever request it answers."""

from __future__ import annotations

import time

import pytest

pytestmark = pytest.mark.kernel


def shown_status(statuses: list[tuple[str, str | None, str | None]]) -> str:
    """What JupyterLab's indicator shows: the state of the last status message."""
    return statuses[-1][0]


@pytest.mark.parametrize("request_type", ["create_subshell_request", "kernel_info_request"])
def test_status_stays_busy_while_a_cell_streams(kernel, request_type):
    ex = kernel.submit("%%llm openai:gpt-4o-mini~long:300 --no-widget\nA story")
    end = time.monotonic() + 10
    while not any(p == ex.msg_id and s == "busy" for s, p, _ in kernel.statuses):
        assert time.monotonic() < end
        kernel.pump(0.02)
    kernel.pump(0.3)
    control_id = kernel.control(request_type)
    kernel.pump(0.5)
    assert not ex.done
    answered = [s for s, p, _ in kernel.statuses if p == control_id]
    assert answered == ["busy", "idle"]  # the control request is still answered in pairs
    assert shown_status(kernel.statuses) == "busy", kernel.statuses[-4:]
    kernel.wait(ex, 60)
    assert ex.status == "ok"
    kernel.pump(0.2)
    assert shown_status(kernel.statuses) == "idle"
    assert kernel.statuses[-1][1] == ex.msg_id
