"""%load_ext / %unload_ext on an in-process IPython shell (no kernel): the magics own the
session, the transformer reaches them through IPython's magics registry, unload takes
everything back and a reload works."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from IPython.core.interactiveshell import InteractiveShell

from n3_notebook.jupyter.magics import LLMMagics
from n3_notebook.jupyter.transformer import CellTransformer


@pytest.fixture
def shell() -> Iterator[InteractiveShell]:
    ip = InteractiveShell.instance()
    try:
        yield ip
        ip.run_line_magic("unload_ext", "n3_notebook")
    finally:
        InteractiveShell.clear_instance()  # later tests see no shell, as before


def ours(ip: InteractiveShell) -> list[CellTransformer]:
    return [t for t in ip.input_transformers_cleanup if isinstance(t, CellTransformer)]


def test_load_unload_reload(shell: InteractiveShell, capsys: pytest.CaptureFixture[str]) -> None:
    shell.run_line_magic("load_ext", "n3_notebook")
    magics = shell.magics_manager.registry["LLMMagics"]
    assert isinstance(magics, LLMMagics)
    assert magics.session.namespace is shell.user_ns
    assert shell.user_ns["Err"] is magics.session.errors
    assert ours(shell) == [magics.transformer]
    shell.run_line_magic("load_ext", "n3_notebook")  # twice: nothing doubles
    assert ours(shell) == [magics.transformer]
    assert not magics.session.widgets  # no kernel here: text views

    code = shell.transform_cell("%%llm openai:gpt-4o-mini\nHi\n")
    assert "magics_manager.registry['LLMMagics'].run_cell_async('llm'" in code

    shell.run_line_magic("config", "LLMMagics.max_history = 3")
    assert magics.session.settings.max_history == 3
    shell.run_line_magic("llm", "")
    assert "%%llm [MODEL ...]" in capsys.readouterr().out

    shell.run_line_magic("unload_ext", "n3_notebook")
    assert "LLMMagics" not in shell.magics_manager.registry and ours(shell) == []
    shell.run_line_magic("load_ext", "n3_notebook")
    again = shell.magics_manager.registry["LLMMagics"]
    assert again is not magics and ours(shell) == [again.transformer]


def test_errors_are_kept_for_prompts(shell: InteractiveShell) -> None:
    shell.run_line_magic("load_ext", "n3_notebook")
    result = shell.run_cell("1/0")
    errors = shell.magics_manager.registry["LLMMagics"].session.errors
    assert errors[result.execution_count].startswith("ZeroDivisionError")
