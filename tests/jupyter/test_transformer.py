"""The input transformer: which cells become awaited runners, and what they await."""

from __future__ import annotations

import ast

from n3_notebook.jupyter.magics import CELL_RUNNERS, LINE_RUNNERS, LLMMagics
from n3_notebook.jupyter.transformer import CellTransformer

T = CellTransformer(LLMMagics.__name__, CELL_RUNNERS, LINE_RUNNERS)
REGISTRY = "__import__('IPython').get_ipython().magics_manager.registry['LLMMagics']"


def compiles_as_top_level_await(code: str) -> None:
    compile(code, "<cell>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)


def test_cell_magics_become_awaited_runners() -> None:
    out = T(["%%llm openai:gpt-4o-mini -o r\n", "Hello {name}\n", "'quotes' \"too\"\n"])
    assert out == [
        f"await {REGISTRY}.run_cell_async('llm', 'openai:gpt-4o-mini -o r', "
        "'Hello {name}\\n\\'quotes\\' \"too\"\\n')\n"
    ]
    compiles_as_top_level_await(out[0])
    chain = T(["%%chain explain\n", "step a: m:x\n", "    hi\n"])
    assert chain[0].startswith(f"await {REGISTRY}.run_cell_async('chain', 'explain', ")
    compiles_as_top_level_await(chain[0])


def test_chain_run_alone_becomes_awaited() -> None:
    out = T(["%chain run explain topic=tides\n"])
    assert out == [f"await {REGISTRY}.run_line_async('chain', 'run explain topic=tides')\n"]
    compiles_as_top_level_await(out[0])


def test_everything_else_is_left_alone() -> None:
    for lines in (
        [],
        ["print(1)\n"],
        ["%%time\n", "x = 1\n"],
        ["%chain list\n"],
        ["%chain run explain\n", "print(1)\n"],  # not alone in its cell: the line magic
        ["%llm providers\n"],
        ["%%llmx\n", "hi\n"],
    ):
        assert T(lines) == lines


def test_the_runners_match_the_magics() -> None:
    assert set(CELL_RUNNERS) == {"llm", "chain"}
    assert all(hasattr(LLMMagics, name) for name in CELL_RUNNERS)
