from __future__ import annotations

from collections.abc import Iterator

import pytest

from n3_notebook.emulator import Emulator, run_emulator


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with run_emulator(token_delay=0, first_token_delay=0) as emulator:
        yield emulator


@pytest.fixture(autouse=True)
def _fresh(emu: Emulator) -> None:
    emu.reset()
