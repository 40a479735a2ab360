"""The calls table: created by migrations, versioned with PRAGMA user_version."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from n3_notebook.log.schema import (
    COLUMNS,
    LATEST_VERSION,
    MIGRATIONS,
    SchemaTooNewError,
    connect,
    migrate,
)


def _version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def test_a_new_file_gets_the_latest_schema(tmp_path: Path) -> None:
    conn = connect(tmp_path / "deep" / "folder" / "log.db")
    assert _version(conn) == LATEST_VERSION == len(MIGRATIONS)
    columns = [row[1] for row in conn.execute("PRAGMA table_info(calls)")]
    assert columns == ["id", *COLUMNS]
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_migrations_run_once_and_in_order(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    connect(path).close()
    later = (*MIGRATIONS, "ALTER TABLE calls ADD COLUMN tags TEXT;")
    conn = sqlite3.connect(path, isolation_level=None)
    assert migrate(conn, later) == LATEST_VERSION
    assert migrate(conn, later) == LATEST_VERSION + 1  # already there: nothing to do
    assert _version(conn) == LATEST_VERSION + 1
    assert "tags" in [row[1] for row in conn.execute("PRAGMA table_info(calls)")]
    conn.close()


def test_a_failed_migration_leaves_the_database_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    connect(path).close()
    broken = (*MIGRATIONS, "ALTER TABLE calls ADD COLUMN ok TEXT; THIS IS NOT SQL;")
    conn = sqlite3.connect(path, isolation_level=None)
    with pytest.raises(sqlite3.OperationalError):
        migrate(conn, broken)
    assert _version(conn) == LATEST_VERSION
    assert "ok" not in [row[1] for row in conn.execute("PRAGMA table_info(calls)")]
    conn.close()


def test_a_newer_schema_is_refused_with_advice(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    conn = connect(path)
    conn.execute(f"PRAGMA user_version = {LATEST_VERSION + 5}")
    conn.close()
    with pytest.raises(SchemaTooNewError, match="upgrade n3_notebook or point N3_LOG_DB"):
        connect(path)


def test_two_processes_opening_a_new_file_at_once_migrate_it_once(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def opener() -> None:
        try:
            start.wait()
            connect(path).close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=opener) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    conn = connect(path)
    assert _version(conn) == LATEST_VERSION
    conn.close()
