"""In a real kernel: a %%llm cell is logged, and the log survives a kernel restart."""

from __future__ import annotations

from pathlib import Path

import pytest

from n3_notebook.emulator import Emulator
from tests.kernel.conftest import loaded_kernel

from .conftest import DISTINCTIVE_KEY

pytestmark = pytest.mark.kernel


def test_a_cell_is_logged_and_survives_a_restart(emulator: Emulator, tmp_path: Path) -> None:
    db = tmp_path / "kernel-log.db"
    env = {
        "N3_LOG_DB": str(db),
        "OPENAI_BASE_URL": emulator.base_url("openai"),
        "OPENAI_API_KEY": DISTINCTIVE_KEY,
    }
    with loaded_kernel(env) as k:
        ex = k.run("%%llm openai:gpt-4o-mini --no-widget\nRemember this kernel cell", timeout=60)
        assert ex.status == "ok", ex.text()
        k.km.restart_kernel(now=False)  # as the notebook's Restart does: shutdown, then start
        k.kc.wait_for_ready(timeout=60)
        ex = k.run(
            "import n3_notebook.log as _log\n"
            "_c = _log.query()[-1]\n"
            "print(_c.provider, _c.model, _c.outcome, _c.prompt, bool(_c.response))",
            timeout=60,
        )
        assert ex.status == "ok", ex.text()
    assert "openai gpt-4o-mini ok Remember this kernel cell True" in ex.text()
    files = [f for f in db.parent.iterdir() if f.name.startswith(db.name)]
    assert all(DISTINCTIVE_KEY.encode() not in f.read_bytes() for f in files)
