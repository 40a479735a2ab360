from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from n3_notebook.emulator import Emulator, run_emulator


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    """One fast emulator per test module (records and fault counters reset per test)."""
    with run_emulator(token_delay=0, first_token_delay=0) as emulator:
        yield emulator


@pytest.fixture(autouse=True)
def _fresh(request: pytest.FixtureRequest) -> None:
    if "emu" in request.fixturenames:
        request.getfixturevalue("emu").reset()


@pytest.fixture
async def client(emu: Emulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{emu.port}", timeout=10) as c:
        yield c
