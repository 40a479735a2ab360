"""Ctrl-C during the blocking facade cancels the request: KeyboardInterrupt reaches the
caller and the server sees the connection close."""

from __future__ import annotations

import _thread
import threading
import time

import pytest

from n3_notebook import create_provider
from n3_notebook.emulator import run_emulator


def test_ctrl_c_during_generate_cancels_the_request():
    with run_emulator(token_delay=0.01) as emu:
        p = create_provider(
            "openai:gpt-4o-mini~long:2000", api_key="k-sync-123456", base_url=emu.base_url("openai")
        )
        timer = threading.Timer(0.5, _thread.interrupt_main)  # what Ctrl-C does
        timer.start()
        started = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            p.generate("a long story")
        assert time.monotonic() - started < 3  # not the ~20 s the answer would take
        rec = emu.wait_for_close_sync(-1, timeout=2.0)
        assert rec.client_disconnected and not rec.completed
