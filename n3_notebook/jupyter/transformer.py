"""The input transformer: a `%%llm` / `%%chain` cell becomes a top-level `await` of our
async runner, so it runs as a coroutine on the kernel's own loop (never a nested loop)."""

from __future__ import annotations

RUNNERS = {"llm": "run_llm_cell", "chain": "run_chain_cell"}
MODULE = "n3_notebook.jupyter.runner"


def transform(lines: list[str]) -> list[str]:
    """IPython cleanup transformer: rewrite our cell magics (and a cell that is just
    `%chain run ...`), leave everything else."""
    if not lines:
        return lines
    first = lines[0]
    if first.startswith("%chain run ") and not "".join(lines[1:]).strip():
        arg = first[len("%chain ") :].strip()
        return [f"await __import__({MODULE!r}, fromlist=['_']).run_chain_line({arg!r})\n"]
    if not first.startswith("%%"):
        return lines
    head = first[2:].rstrip("\r\n")
    name, _, rest = head.partition(" ")
    func = RUNNERS.get(name)
    if func is None:
        return lines
    body = "".join(lines[1:])
    call = f"await __import__({MODULE!r}, fromlist=[{func!r}]).{func}({rest.strip()!r}, {body!r})"
    return [call + "\n"]
