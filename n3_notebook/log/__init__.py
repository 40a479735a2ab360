"""The call log: every request made through n3_notebook, remembered in SQLite.

Each finished request (library calls, %%llm cells, maps, chains and the service all go
through the provider core) is written off the hot path, in batches, to a SQLite file:
N3_LOG_DB if set, else log.db in the user's data folder. N3_LOG=0 (or disable()) turns it
off; N3_LOG_TEXT=0 (or configure(store_text=False)) keeps the numbers but not the prompts
and answers. Keys and auth headers are never stored; every text is redacted first.

    import n3_notebook.log as log
    log.query(5, model="gpt-4o-mini", search="invoice")   # the last calls
    log.dashboard(since="1h")                               # per-model aggregates

The file opens in `sqlite3` or Datasette; the README documents the `calls` table."""

from __future__ import annotations

from pathlib import Path

from ..core.metrics import add_observer
from .dashboard import Bucket, Dashboard, ModelStats, dashboard, percentile
from .origin import Origin, current_origin, origin, reset_origin, set_origin
from .query import Call, Calls, TimeSpec, parse_since, query
from .schema import LATEST_VERSION, SchemaTooNewError, migrate
from .writer import DB_ENV, ENABLE_ENV, TEXT_ENV, WRITER, LogStatus, default_path

__all__ = [
    "DB_ENV",
    "ENABLE_ENV",
    "LATEST_VERSION",
    "TEXT_ENV",
    "Bucket",
    "Call",
    "Calls",
    "Dashboard",
    "LogStatus",
    "ModelStats",
    "Origin",
    "SchemaTooNewError",
    "TimeSpec",
    "configure",
    "current_origin",
    "dashboard",
    "db_path",
    "default_path",
    "disable",
    "enable",
    "flush",
    "is_enabled",
    "migrate",
    "origin",
    "parse_since",
    "percentile",
    "query",
    "reset_origin",
    "set_origin",
    "status",
]


def enable() -> None:
    """Log every call from now on (also clears a pause after a database problem)."""
    WRITER.configure(enabled=True)


def disable() -> None:
    """Stop logging calls (what is already queued is still written)."""
    WRITER.configure(enabled=False)


def is_enabled() -> bool:
    return WRITER.enabled


def configure(
    *, enabled: bool | None = None, store_text: bool | None = None, path: str | Path | None = None
) -> None:
    """Turn the log on or off, keep or drop prompt and answer text, or write elsewhere."""
    WRITER.configure(enabled=enabled, store_text=store_text, path=path)


def db_path() -> Path:
    """The file calls are written to."""
    return WRITER.path


def flush(timeout: float = 5.0) -> bool:
    """Wait until the calls made so far are in the file; False if that took too long."""
    return WRITER.flush(timeout)


def status() -> LogStatus:
    return WRITER.status()


add_observer(WRITER.record)
