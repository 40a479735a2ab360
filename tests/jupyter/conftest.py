"""Cell runners driven directly with a NotebookSession (no kernel): the emulator on
loopback stands in for the providers, a list records what the cell displays."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from n3_notebook.emulator import Emulator, run_emulator
from n3_notebook.jupyter.session import NotebookSession, Settings

KEY = "sk-jupyter-test-FAKE-0123456789"
PROVIDER_VARS = (
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_BASE_URL",
    "GEMINI_API_KEY",
    "GOOGLE_API_KEY",
    "GEMINI_BASE_URL",
    "CO_API_KEY",
    "COHERE_API_KEY",
    "N3_OFFLINE",
)


class Shown(list[Any]):
    """A `display` that keeps what a cell displayed (and `update`: what replaced it)."""

    def __init__(self) -> None:
        super().__init__()
        self.updates: dict[str, Any] = {}

    def __call__(self, obj: Any, raw: bool = False, display_id: str | None = None) -> None:
        self.append(obj)

    def update(self, obj: Any, *, display_id: str, raw: bool = False) -> None:
        self.updates[display_id] = obj

    def markdown(self) -> list[str]:
        return [o["text/markdown"] for o in self if isinstance(o, dict) and "text/markdown" in o]


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait (polling the emulator's records, which have no event) until condition()."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with run_emulator(token_delay=0.002, first_token_delay=0.0) as e:
        yield e


@pytest.fixture
def shown() -> Shown:
    return Shown()


@pytest.fixture
async def session(
    emu: Emulator, shown: Shown, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[NotebookSession]:
    for var in PROVIDER_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("OPENAI_BASE_URL", emu.base_url("openai"))
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("GEMINI_BASE_URL", emu.base_url("gemini"))
    monkeypatch.setenv("GEMINI_API_KEY", KEY)
    monkeypatch.setenv("OLLAMA_HOST", "127.0.0.1:9")  # nothing listens: no local Ollama
    emu.reset()
    s = NotebookSession(
        Settings(default_model="openai:gpt-4o-mini", update_interval=0.01),
        {"topic": "tides"},
        display=shown,
        update=shown.update,
    )
    yield s
    for handle in s.handles:
        handle.cancel()
    await s.aclose()
    assert "OPENAI_API_KEY" in os.environ  # the fixture's environment was in force
