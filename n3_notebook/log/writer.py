"""The writer: takes each finished request's record off the request's task and writes it to
SQLite from one background thread, in batches.

On the request's task the cost is one context-variable read and one queue put; rows are
built (cost, redaction, JSON) and written on the thread, many per transaction. A database
that is locked past BUSY_TIMEOUT, corrupt, newer than us or unwritable is reported once (a
logging warning) and logging pauses: locked for PAUSE_SECONDS, anything else until the log
is configured or enabled again. Records that arrive while paused are counted, not kept.
A request never fails because of the log."""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import queue
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import platformdirs

from ..core.metrics import RequestMetrics
from .origin import current_origin
from .rows import to_row
from .schema import COLUMNS, connect

__all__ = [
    "DB_ENV",
    "ENABLE_ENV",
    "TEXT_ENV",
    "WRITER",
    "CallLogWriter",
    "LogStatus",
    "default_path",
]

logger = logging.getLogger("n3_notebook.log")

DB_ENV = "N3_LOG_DB"
ENABLE_ENV = "N3_LOG"
TEXT_ENV = "N3_LOG_TEXT"
DB_NAME = "log.db"
MAX_BATCH = 500  # rows per transaction at most
LINGER = 0.05  # seconds the thread waits for more rows before writing a batch
MAX_PENDING = 100_000  # records waiting at most; past it new ones are dropped (counted)
PAUSE_SECONDS = 60.0  # how long a locked database pauses logging
EXIT_FLUSH_TIMEOUT = 2.0
_OFF = {"0", "false", "no", "off"}

# Columns are the schema's constants and every value is bound (?), so no SQL is built from data.
_INSERT = f"INSERT INTO calls ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"  # nosec B608


def default_path() -> Path:
    """N3_LOG_DB if set, else log.db in the user's data folder (platformdirs)."""
    override = os.environ.get(DB_ENV, "").strip()
    if override:
        return Path(override).expanduser()
    return platformdirs.user_data_path("n3_notebook", appauthor=False) / DB_NAME


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in _OFF


@dataclass(frozen=True, slots=True)
class LogStatus:
    """What the log is doing: where it writes, whether it is on, and what it lost."""

    path: Path
    enabled: bool
    store_text: bool
    paused: str | None  # why writing is paused, or None
    written: int
    dropped: int
    pending: int


class _Flush:
    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done = threading.Event()


class CallLogWriter:
    """One per process (n3_notebook.log holds it); `record` is the metrics observer."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._enabled = _env_flag(ENABLE_ENV)
        self._store_text = _env_flag(TEXT_ENV)
        self._path: Path | None = None  # None: default_path() when first needed
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._conn: sqlite3.Connection | None = None
        self._conn_path: Path | None = None
        self._paused: str | None = None
        self._paused_until: float | None = None  # None with _paused set: until reconfigured
        self._warned: set[str] = set()
        self._written = 0
        self._dropped = 0
        self.session = uuid.uuid4().hex[:12]
        os.register_at_fork(after_in_child=self._after_fork)
        atexit.register(self.close)

    # ------------------------------------------------------------ the hot path
    def record(self, rec: RequestMetrics) -> None:
        """Queue one finished request (called by core.metrics.emit on the request's task)."""
        if not self._enabled:
            return
        if self._thread is None:
            self._start()
        if self._queue.qsize() >= MAX_PENDING:
            self._dropped += 1
            return
        self._queue.put((rec, current_origin(), self._store_text))

    # ------------------------------------------------------------ settings
    def configure(
        self,
        *,
        enabled: bool | None = None,
        store_text: bool | None = None,
        path: str | Path | None = None,
    ) -> None:
        """Change what is logged and where; any of them, the rest stay. A new path (or
        enabling) clears a pause, so a fixed database is tried again."""
        self.flush()
        with self._lock:
            if path is not None:
                self._path = Path(path).expanduser()
            if store_text is not None:
                self._store_text = bool(store_text)
            if enabled is not None:
                self._enabled = bool(enabled)
            if path is not None or enabled:
                self._paused = self._paused_until = None
                self._warned.clear()

    @property
    def path(self) -> Path:
        return self._path if self._path is not None else default_path()

    @property
    def enabled(self) -> bool:
        return self._enabled

    def status(self) -> LogStatus:
        return LogStatus(
            path=self.path,
            enabled=self._enabled,
            store_text=self._store_text,
            paused=self._paused,
            written=self._written,
            dropped=self._dropped,
            pending=self._queue.qsize(),
        )

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every record queued so far is written (or dropped); False on timeout."""
        if self._thread is None or not self._thread.is_alive():
            return self._queue.empty()
        marker = _Flush()
        self._queue.put(marker)
        return marker.done.wait(timeout)

    def close(self) -> None:
        """Write what is queued (briefly) and stop the thread (at exit)."""
        thread = self._thread
        if thread is not None and thread.is_alive():
            self._queue.put(None)
            thread.join(EXIT_FLUSH_TIMEOUT)
        self._thread = None

    # ------------------------------------------------------------ the thread
    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                thread = threading.Thread(target=self._run, name="n3-call-log", daemon=True)
                thread.start()
                self._thread = thread

    def _after_fork(self) -> None:
        self._queue = queue.SimpleQueue()
        self._thread = None
        self._conn = None  # the parent's connection is not ours to use
        self._conn_path = None
        self._lock = threading.Lock()
        self.session = uuid.uuid4().hex[:12]

    def _run(self) -> None:
        stop = False
        while not stop:
            batch: list[tuple[Any, ...]] = []
            flushes: list[_Flush] = []
            item = self._queue.get()
            deadline = time.monotonic() + LINGER
            while True:
                if item is None:
                    stop = True
                    break
                if isinstance(item, _Flush):
                    flushes.append(item)
                    break
                batch.append(item)
                if len(batch) >= MAX_BATCH:
                    break
                left = deadline - time.monotonic()
                try:
                    item = self._queue.get(timeout=left) if left > 0 else self._queue.get_nowait()
                except queue.Empty:
                    break
            self._write(batch)
            for marker in flushes:
                marker.done.set()
        self._disconnect()

    def _write(self, batch: list[tuple[Any, ...]]) -> None:
        if not batch:
            return
        if self._paused is not None:
            if self._paused_until is None or time.monotonic() < self._paused_until:
                self._dropped += len(batch)
                return
            self._paused = self._paused_until = None
        try:
            rows = [to_row(rec, origin, text, self.session) for rec, origin, text in batch]
        except Exception:  # a record we cannot turn into a row: report, never raise
            logger.exception("call log: could not build a row; %d records dropped", len(batch))
            self._dropped += len(batch)
            return
        try:
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany(_INSERT, rows)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except (sqlite3.Error, OSError) as exc:
            self._dropped += len(rows)
            self._pause(exc)
            return
        self._written += len(rows)

    def _connection(self) -> sqlite3.Connection:
        path = self.path
        if self._conn is None or self._conn_path != path:
            self._disconnect()
            self._conn = connect(path)
            self._conn_path = path
        return self._conn

    def _disconnect(self) -> None:
        conn, self._conn, self._conn_path = self._conn, None, None
        if conn is not None:
            with contextlib.suppress(sqlite3.Error):
                conn.close()

    def _pause(self, exc: BaseException) -> None:
        text = str(exc)
        locked = isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text)
        self._disconnect()
        if locked:
            self._paused = "locked"
            self._paused_until = time.monotonic() + PAUSE_SECONDS
            how = f"for {PAUSE_SECONDS:.0f} s"
        else:
            self._paused = "unusable"
            self._paused_until = None
            how = "until n3_notebook.log.configure() or enable() is called"
        if self._paused not in self._warned:
            self._warned.add(self._paused)
            logger.warning(
                "call log: the database %s is %s (%s: %s); logging is paused %s. Requests "
                "are not affected. Point N3_LOG_DB at another file or set N3_LOG=0 to turn "
                "the log off.",
                self.path,
                self._paused,
                type(exc).__name__,
                text,
                how,
            )


#: the process's writer: n3_notebook.log subscribes its `record` to every request
WRITER = CallLogWriter()
