"""Re-execute the demo notebooks and save their outputs, as nbval will compare them.

    python -m tests.notebooks.refresh                  # every notebooks/NN-*.ipynb
    python -m tests.notebooks.refresh 04 06            # the ones whose name starts so

Run it after changing a notebook, or when the emulator's text or a display format changes
on purpose (nbval then fails until the saved outputs are refreshed). It uses the same
environment as the nbval test: offline mode, no keys, fast emulator pacing."""

from __future__ import annotations

import os
import sys
import tempfile
import time
from typing import Any

import nbformat
from nbclient import NotebookClient

from .nbenv import NOTEBOOKS, notebook_env, notebook_paths


class _AsNbvalSees(NotebookClient):
    """nbval compares the outputs a cell displays and ignores update_display_data (a
    finished stream's pane replaced by static HTML), so the saved outputs are kept as they
    were first displayed: what nbval will see again."""

    def _update_display_id(self, display_id: str, msg: dict[str, Any]) -> None:
        pass


def refresh(path: os.PathLike[str] | str) -> float:
    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    client = _AsNbvalSees(
        nb,
        timeout=120,
        kernel_name="python3",
        allow_errors=False,  # only cells tagged raises-exception may fail
        record_timing=False,
        store_widget_state=False,  # live widgets only; the saved text/plain says what it was
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    client.execute()
    nb.metadata.pop("widgets", None)
    nbformat.validate(nb)
    nbformat.write(nb, path)
    return time.perf_counter() - start


def main(argv: list[str]) -> int:
    paths = [p for p in notebook_paths() if not argv or any(p.name.startswith(a) for a in argv)]
    if not paths:
        print(f"no notebook matches {argv}", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as ipython_dir:
        env = notebook_env(ipython_dir)
        os.environ.clear()
        os.environ.update(env)
        for path in paths:
            took = refresh(path)
            print(f"{path.name}: {took:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
