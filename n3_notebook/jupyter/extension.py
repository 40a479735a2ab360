"""`%load_ext n3_notebook`: the magics (which own the session), the input transformer,
`Err`, and the status keeper; `%unload_ext` takes them all back."""

from __future__ import annotations

import contextlib
from typing import Any

from .magics import LLMMagics

__all__ = ["load", "unload"]

NAME = LLMMagics.__name__


def _loaded(ip: Any) -> LLMMagics | None:
    magics = ip.magics_manager.registry.get(NAME)
    return magics if isinstance(magics, LLMMagics) else None


def load(ip: Any) -> None:
    if _loaded(ip) is not None:
        return  # already loaded in this shell
    magics = LLMMagics(shell=ip)
    ip.register_magics(magics)
    if magics not in ip.configurables:
        ip.configurables.append(magics)
    ip.input_transformers_cleanup.append(magics.transformer)
    ip.user_ns.setdefault("Err", magics.session.errors)
    ip.events.register("post_run_cell", magics.session.record_error)
    magics.busy.install()


def unload(ip: Any) -> None:
    magics = _loaded(ip)
    if magics is None:
        return
    with contextlib.suppress(ValueError):
        ip.input_transformers_cleanup.remove(magics.transformer)
    with contextlib.suppress(ValueError):
        ip.events.unregister("post_run_cell", magics.session.record_error)
    magics.busy.uninstall()
    for handle in magics.session.handles:
        handle.cancel()
    if magics in ip.configurables:
        ip.configurables.remove(magics)
    del ip.magics_manager.registry[NAME]
