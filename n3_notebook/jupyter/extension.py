"""`%load_ext n3_notebook`: magics, configuration, the input transformer, Err[n]."""

from __future__ import annotations

import contextlib
import traceback
from typing import Any

from . import magics as magics_module
from .status import BusyWhileRunning
from .transformer import transform


def load(ip: Any) -> None:
    if magics_module.active() is not None and magics_module.active().shell is ip:
        return  # already loaded in this shell
    m = magics_module.LLMMagics(shell=ip)
    ip.register_magics(m)
    if m not in ip.configurables:
        ip.configurables.append(m)
    cleanup = ip.input_transformers_cleanup
    if transform not in cleanup:
        cleanup.append(transform)
    ip.user_ns.setdefault("Err", m.errors)
    ip.events.register("post_run_cell", _record_error)
    m.busy = BusyWhileRunning(ip)
    m.busy.install()
    magics_module.register(m)


def unload(ip: Any) -> None:
    m = magics_module.active()
    if transform in ip.input_transformers_cleanup:
        ip.input_transformers_cleanup.remove(transform)
    with contextlib.suppress(ValueError):
        ip.events.unregister("post_run_cell", _record_error)
    if m is not None:
        for h in m.handles:
            h.cancel()
        m.busy.uninstall()
        if m in ip.configurables:
            ip.configurables.remove(m)
    magics_module.unregister()


def _record_error(result: Any) -> None:
    """Keep the last error's text as Err[n], for prompts like `Explain: {Err[5]}`."""
    m = magics_module.active()
    exc = getattr(result, "error_in_exec", None) or getattr(result, "error_before_exec", None)
    if m is None or exc is None:
        return
    count = getattr(result, "execution_count", None)
    text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    if count is not None:
        m.errors[count] = text
