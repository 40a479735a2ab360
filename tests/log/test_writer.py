"""The writer never fails or slows a request: locked and corrupt databases are reported once
and logging pauses; records are written in batches off the request's task."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

import n3_notebook.log as log
from n3_notebook import create_provider
from n3_notebook.emulator import Emulator
from n3_notebook.log import schema, writer

from .conftest import record, write


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "n3_notebook.log"]


async def test_a_locked_database_is_reported_once_and_requests_go_on(
    emulator: Emulator,
    log_db: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(schema, "BUSY_TIMEOUT", 0.05)
    write(record(prompt="before the lock"))
    other = sqlite3.connect(log_db, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        p = create_provider(
            "openai:gpt-4o-mini", base_url=emulator.base_url("openai"), api_key="k" * 10
        )
        async with p:
            t0 = time.perf_counter()
            for i in range(3):
                await p.agenerate(f"while locked {i}")
                assert log.flush()
            elapsed = time.perf_counter() - t0
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert elapsed < 5  # three requests; the log's waits are not theirs
    status = log.status()
    assert status.paused == "locked" and status.dropped >= 3
    warned = _warnings(caplog)
    assert len(warned) == 1 and "locked" in warned[0] and "Requests are not affected" in warned[0]
    # a new path (or enable()) clears the pause: logging resumes
    log.enable()
    write(record(prompt="after the lock"))
    assert [c.prompt for c in log.query()] == ["before the lock", "after the lock"]


def test_a_locked_database_is_tried_again_after_the_pause(
    log_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(schema, "BUSY_TIMEOUT", 0.05)
    monkeypatch.setattr(writer, "PAUSE_SECONDS", 0.2)
    write(record(prompt="first"))
    other = sqlite3.connect(log_db, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    write(record(prompt="lost"))
    other.execute("ROLLBACK")
    other.close()
    assert log.status().paused == "locked"
    time.sleep(0.3)
    write(record(prompt="back"))
    assert [c.prompt for c in log.query()] == ["first", "back"]
    assert log.status().paused is None


def test_a_corrupt_database_pauses_logging_until_reconfigured(
    log_db: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log_db.parent.mkdir(parents=True, exist_ok=True)
    log_db.write_bytes(b"this is not a database, " * 400)
    dropped, written = log.status().dropped, log.status().written
    for i in range(3):
        write(record(prompt=f"into the void {i}"))
    status = log.status()
    assert status.paused == "unusable"
    assert (status.dropped - dropped, status.written - written) == (3, 0)
    warned = _warnings(caplog)
    assert len(warned) == 1 and "unusable" in warned[0] and "N3_LOG_DB" in warned[0]
    assert log_db.read_bytes().startswith(b"this is not a database")  # never overwritten
    fresh = tmp_path / "fresh.db"
    log.configure(path=fresh)
    write(record(prompt="somewhere sane"))
    assert [c.prompt for c in log.query()] == ["somewhere sane"]


def test_a_newer_schema_pauses_logging(log_db: Path, caplog: pytest.LogCaptureFixture) -> None:
    conn = schema.connect(log_db)
    conn.execute(f"PRAGMA user_version = {schema.LATEST_VERSION + 1}")
    conn.close()
    write(record())
    assert log.status().paused == "unusable"
    assert "newer than this" in _warnings(caplog)[0]


def test_records_are_written_in_batches(log_db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    transactions: list[int] = []
    real = writer.CallLogWriter._write

    def counting(self: writer.CallLogWriter, batch: list[object]) -> None:
        if batch:
            transactions.append(len(batch))
        real(self, batch)  # type: ignore[arg-type]

    monkeypatch.setattr(writer.CallLogWriter, "_write", counting)
    write(*(record(prompt=f"p{i}") for i in range(1200)))
    assert sum(transactions) == 1200
    assert len(transactions) <= 12  # not one transaction per call
    assert max(transactions) <= writer.MAX_BATCH
    assert len(log.query(None)) == 1200


def test_record_costs_the_caller_microseconds(log_db: Path) -> None:
    """The observer only queues: building rows and writing happen on the thread."""
    recs = [record(prompt="x" * 2000, answer="y" * 8000) for _ in range(2000)]
    t0 = time.perf_counter()
    for rec in recs:
        writer.WRITER.record(rec)
    per_call = (time.perf_counter() - t0) / len(recs)
    assert log.flush(30)
    assert per_call < 200e-6  # generous for a busy machine; benchmarks/ has the real figure
    assert len(log.query(None)) == 2000


def test_a_record_that_cannot_become_a_row_is_dropped_and_reported(
    log_db: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bad = record()
    bad.messages = [object()]  # type: ignore[list-item]
    write(bad, record(prompt="fine"))
    assert "could not build a row" in " ".join(_warnings(caplog))
    write(record(prompt="still fine"))
    assert log.query()[-1].prompt == "still fine"


def test_status_says_where_and_what(log_db: Path) -> None:
    write(record(), record())
    status = log.status()
    assert status.path == log_db == log.db_path()
    assert status.enabled and status.store_text and status.written >= 2 and status.pending == 0


def test_the_default_file_is_in_the_user_data_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("N3_LOG_DB")
    path = writer.default_path()
    assert path.name == "log.db" and "n3_notebook" in str(path)
    monkeypatch.setenv("N3_LOG_DB", "~/elsewhere.db")
    assert writer.default_path() == Path("~/elsewhere.db").expanduser()


def test_the_test_suite_never_writes_to_the_user_data_folder() -> None:
    import os

    assert os.environ["N3_LOG_DB"].endswith("log.db")
    assert "n3-test-log-" in os.environ["N3_LOG_DB"]
