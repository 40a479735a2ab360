from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import pytest

from n3_notebook.emulator import run_emulator

from .harness import Kernel

KEY = "sk-kernel-test-FAKE-0123456789"
KEY_VARS = (
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "GEMINI_API_KEY",
    "GOOGLE_API_KEY",
    "CO_API_KEY",
    "COHERE_API_KEY",
    "OPENAI_BASE_URL",
    "ANTHROPIC_BASE_URL",
    "N3_OFFLINE",
    "OLLAMA_HOST",
)


@pytest.fixture(scope="module")
def emu():
    with run_emulator(token_delay=0.01, first_token_delay=0.02) as e:
        yield e


@contextlib.contextmanager
def loaded_kernel(env: dict[str, str]) -> Iterator[Kernel]:
    """A kernel with `env` (and none of our key or base URL variables from this process)
    and the extension loaded; this process's environment is restored afterwards."""
    saved = {k: os.environ.pop(k) for k in KEY_VARS if k in os.environ}
    # nothing listens here, so the no-key default does not find a local Ollama
    k = Kernel(env={"OLLAMA_HOST": "127.0.0.1:9", **env})
    try:
        ex = k.run("%load_ext n3_notebook")
        assert ex.status == "ok", ex.text()
        yield k
    finally:
        k.close()
        os.environ.update(saved)


@pytest.fixture(scope="module")
def kernel(emu):
    env = {
        "OPENAI_BASE_URL": emu.base_url("openai"),
        "OPENAI_API_KEY": KEY,
        "GEMINI_BASE_URL": emu.base_url("gemini"),
        "GEMINI_API_KEY": "AIzaKERNELtestFAKEkey0123456789",
    }
    with loaded_kernel(env) as k:
        yield k


@pytest.fixture(autouse=True)
def _fresh_records(emu):
    emu.reset()
