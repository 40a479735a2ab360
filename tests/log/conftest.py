from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import n3_notebook.log as log
from n3_notebook.core.metrics import RequestMetrics
from n3_notebook.core.types import Message
from n3_notebook.emulator import Emulator, run_emulator
from n3_notebook.log.writer import WRITER

#: a key shaped like no real provider's, so only our own redaction can mask it
DISTINCTIVE_KEY = "n3-test-KEY-9f8e7d6c5b4a3210-distinctive"


@pytest.fixture(scope="session")
def emulator() -> Iterator[Emulator]:
    with run_emulator(token_delay=0, first_token_delay=0) as emu:
        yield emu


@pytest.fixture
def log_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The process's call log pointed at a fresh file for one test (restored after)."""
    monkeypatch.delenv("N3_OFFLINE", raising=False)
    before = log.status()
    path = tmp_path / "calls" / "log.db"
    log.configure(path=path, enabled=True, store_text=True)
    yield path
    log.configure(path=before.path, enabled=before.enabled, store_text=before.store_text)


def record(
    provider: str = "openai",
    model: str = "gpt-4o-mini",
    *,
    started_at: float | None = None,
    prompt: str = "hello",
    answer: str = "hi there",
    **fields: Any,
) -> RequestMetrics:
    """A finished request's record, as the provider core makes it."""
    rec = RequestMetrics(
        provider,
        model,
        True,
        time.time() if started_at is None else started_at,
        messages=[Message("user", prompt)],
    )
    rec.answer_parts.append(answer)
    rec.finish_reason = "stop"
    for name, value in fields.items():
        setattr(rec, name, value)
    return rec


def write(*records: RequestMetrics) -> None:
    for rec in records:
        WRITER.record(rec)
    assert log.flush()
