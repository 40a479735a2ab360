"""The call log's SQLite schema, its migrations, and opening a database.

Versions live in SQLite's own `PRAGMA user_version`; MIGRATIONS[i] takes a database from
version i to i + 1. Migrating takes the write lock first (BEGIN IMMEDIATE) and reads the
version again inside it, so two kernels opening a new file at once migrate it once.
The standard library's sqlite3 does the job; a wrapper would add a dependency for one table."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

__all__ = [
    "BUSY_TIMEOUT",
    "COLUMNS",
    "LATEST_VERSION",
    "MIGRATIONS",
    "SchemaTooNewError",
    "connect",
    "migrate",
]

#: seconds a writer waits for another process's lock before giving up on a batch
BUSY_TIMEOUT = 2.0

MIGRATIONS: tuple[str, ...] = (
    # 0 -> 1: one row per request
    """
    CREATE TABLE calls (
        id INTEGER PRIMARY KEY,
        time TEXT NOT NULL,
        started_at REAL NOT NULL,
        provider TEXT NOT NULL,
        model TEXT NOT NULL,
        stream INTEGER NOT NULL,
        prompt TEXT,
        system TEXT,
        messages TEXT,
        response TEXT,
        finish_reason TEXT,
        outcome TEXT NOT NULL,
        error_kind TEXT,
        error_message TEXT,
        status_code INTEGER,
        input_tokens INTEGER NOT NULL DEFAULT 0,
        output_tokens INTEGER NOT NULL DEFAULT 0,
        cost_usd REAL,
        ttft_s REAL,
        duration_s REAL,
        queue_wait_s REAL,
        chunks INTEGER NOT NULL DEFAULT 0,
        retries INTEGER NOT NULL DEFAULT 0,
        cached INTEGER NOT NULL DEFAULT 0,
        request_id TEXT,
        notebook TEXT,
        cell TEXT,
        session TEXT
    );
    CREATE INDEX calls_started_at ON calls (started_at);
    CREATE INDEX calls_model ON calls (provider, model, started_at);
    """,
)

LATEST_VERSION = len(MIGRATIONS)

#: the columns a row is written with, in order (everything but the id)
COLUMNS: tuple[str, ...] = (
    "time",
    "started_at",
    "provider",
    "model",
    "stream",
    "prompt",
    "system",
    "messages",
    "response",
    "finish_reason",
    "outcome",
    "error_kind",
    "error_message",
    "status_code",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "ttft_s",
    "duration_s",
    "queue_wait_s",
    "chunks",
    "retries",
    "cached",
    "request_id",
    "notebook",
    "cell",
    "session",
)


class SchemaTooNewError(sqlite3.DatabaseError):
    """The file was written by a newer n3_notebook (its schema version is past ours)."""


def connect(path: str | Path, *, migrations: Sequence[str] = MIGRATIONS) -> sqlite3.Connection:
    """Open (creating it and its folder if needed) and migrate the database at `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(
        path, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False
    )
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        migrate(conn, migrations)
    except BaseException:
        conn.close()
        raise
    return conn


def migrate(conn: sqlite3.Connection, migrations: Sequence[str] = MIGRATIONS) -> int:
    """Bring the database to len(migrations); returns the version it was at before."""
    latest = len(migrations)
    before = _version(conn)
    if before == latest:
        return before
    conn.execute("BEGIN IMMEDIATE")
    try:
        before = _version(conn)
        if before > latest:
            raise SchemaTooNewError(
                f"the call log database has schema version {before}, newer than this "
                f"n3_notebook knows ({latest}); upgrade n3_notebook or point N3_LOG_DB elsewhere"
            )
        for version in range(before, latest):
            for statement in _statements(migrations[version]):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version + 1}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return before


def _version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def _statements(script: str) -> list[str]:
    """A migration's statements (executescript() would commit, breaking the transaction):
    pieces up to each ';' are joined until SQLite says they make a complete statement."""
    out: list[str] = []
    current = ""
    for piece in script.split(";"):
        current += piece + ";"
        if sqlite3.complete_statement(current):
            if current.strip(" \t\r\n;"):
                out.append(current.strip())
            current = ""
    if current.strip(" \t\r\n;"):
        out.append(current.strip())  # incomplete: let SQLite say what is wrong with it
    return out
