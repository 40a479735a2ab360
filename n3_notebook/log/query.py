"""Reading the call log: the last calls, filtered, as Call records (a DataFrame on demand).

Time windows are written like `--since 1h`: a number and a unit (s, m, h, d, w), a
timedelta, a datetime, or Unix seconds."""

from __future__ import annotations

import datetime as _dt
import re
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import orjson

from .render import dataframe, html_table, text_table
from .schema import connect
from .writer import WRITER

__all__ = ["Call", "Calls", "TimeSpec", "open_log", "parse_since", "query", "read_rows"]

TimeSpec = str | float | int | _dt.datetime | _dt.timedelta

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_SPAN = re.compile(
    r"^\s*(\d+(?:\.\d+)?)\s*(s|secs?|seconds?|m|mins?|minutes?|h|hrs?|hours?|d|days?|w|wks?|weeks?)"
    r"\s*$",
    re.I,
)
_SEARCHED = ("prompt", "system", "messages", "response", "error_message")
_PREVIEW = 60


def parse_since(value: TimeSpec, *, now: float | None = None) -> float:
    """Unix seconds of a window's start: "90s", "15m", "1h", "2d", "1w", a timedelta (that
    long ago), a datetime (naive means local time), or Unix seconds as a number."""
    now = time.time() if now is None else now
    if isinstance(value, bool):
        raise TypeError("a time window is a string like '1h', a timedelta or a datetime")
    if isinstance(value, _dt.timedelta):
        return now - value.total_seconds()
    if isinstance(value, _dt.datetime):
        return value.timestamp()
    if isinstance(value, int | float):
        return float(value)
    match = _SPAN.match(str(value))
    if match is None:
        raise ValueError(
            f"cannot read the time window {value!r}: write a number and a unit, such as "
            "'90s', '15m', '1h', '2d' or '1w'"
        )
    return now - float(match.group(1)) * _UNITS[match.group(2)[0].lower()]


@dataclass(frozen=True, slots=True)
class Call:
    """One logged request (a row of the `calls` table; see the README for each column)."""

    id: int
    time: str
    started_at: float
    provider: str
    model: str
    stream: bool
    prompt: str | None
    system: str | None
    messages: str | None
    response: str | None
    finish_reason: str | None
    outcome: str
    error_kind: str | None
    error_message: str | None
    status_code: int | None
    input_tokens: int
    output_tokens: int
    cost_usd: float | None
    ttft_s: float | None
    duration_s: float | None
    queue_wait_s: float | None
    chunks: int
    retries: int
    cached: bool
    request_id: str | None
    notebook: str | None
    cell: str | None
    session: str | None

    @property
    def tokens_per_s(self) -> float | None:
        """Output tokens per second of the call's duration."""
        if not self.duration_s or not self.output_tokens:
            return None
        return self.output_tokens / self.duration_s

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def details(self) -> str:
        """The whole call as text: a summary line, where it came from, every message, the
        answer and the error (the full text that the table cuts short)."""
        facts = [f"#{self.id} {self.time} {self.provider}:{self.model} {self.outcome}"]
        if self.finish_reason:
            facts.append(f"({self.finish_reason})")
        if self.duration_s is not None:
            facts.append(f"{self.duration_s:.3f}s")
        if self.ttft_s is not None:
            facts.append(f"first token {self.ttft_s:.3f}s")
        facts.append(f"{self.input_tokens}+{self.output_tokens} tokens")
        if self.cost_usd is not None:
            facts.append(f"${self.cost_usd:.6f}")
        if self.retries:
            facts.append(f"{self.retries} retries")
        if self.cached:
            facts.append("cached")
        lines = [" ".join(facts)]
        if self.notebook or self.cell:
            lines.append(f"from {self.notebook or '?'}, cell {self.cell or '?'}")
        if self.request_id:
            lines.append(f"request id {self.request_id}")
        if self.messages is None and self.response is None:
            lines.append("(text not stored)")
        else:
            if self.system:
                lines.append(f"[system]\n{self.system}")
            for m in orjson.loads(self.messages or "[]"):
                lines.append(f"[{m.get('role')}]\n{m.get('content')}")
            lines.append(f"[answer]\n{self.response or ''}")
        if self.error_kind or self.error_message:
            lines.append(f"[error] {self.error_kind or ''}: {self.error_message or ''}")
        return "\n".join(lines)


_FIELDS = tuple(f.name for f in fields(Call))
_SUMMARY = ("time", "provider", "model", "outcome", "ttft_s", "duration_s", "output_tokens")


class Calls(list[Call]):
    """A list of Call, oldest first, that shows itself as a table."""

    def to_pandas(self) -> Any:
        """A DataFrame with one row per call and a column per field (needs pandas)."""
        return dataframe([c.as_dict() for c in self], _FIELDS)

    def table(self) -> str:
        """A plain-text table: time, model, outcome, timings, tokens and the prompt's start."""
        return text_table(self.rows())

    def details(self) -> str:
        """Every call's full text (Call.details), one after the other."""
        return "\n\n".join(c.details() for c in self)

    def rows(self) -> list[list[str]]:
        """The table's header and one formatted row per call."""
        return [[*_SUMMARY, "prompt"], *(_summary(c) for c in self)]

    def _repr_html_(self) -> str:
        return html_table(self.rows())

    def __str__(self) -> str:
        return self.table()

    __repr__ = __str__  # a table, also where HTML is not shown


def _summary(c: Call) -> list[str]:
    prompt = " ".join((c.prompt or "").split())
    if len(prompt) > _PREVIEW:
        prompt = prompt[: _PREVIEW - 1] + "…"
    outcome = c.outcome if c.outcome != "error" else f"error: {c.error_kind or '?'}"
    return [
        c.time,
        c.provider,
        c.model,
        outcome + (" (cached)" if c.cached else ""),
        _seconds(c.ttft_s),
        _seconds(c.duration_s),
        str(c.output_tokens),
        prompt,
    ]


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}s"


def open_log(path: str | Path) -> sqlite3.Connection | None:
    """The database at `path`, migrated, or None when no call was ever logged there."""
    path = Path(path)
    if not path.exists():
        return None
    return connect(path)


def query(
    n: int | None = 20,
    *,
    model: str | None = None,
    provider: str | None = None,
    search: str | None = None,
    since: TimeSpec | None = None,
    until: TimeSpec | None = None,
    outcome: str | None = None,
    notebook: str | None = None,
    path: str | Path | None = None,
) -> Calls:
    """The last `n` calls (None: all) matching every filter given, oldest first.

    model: a model name, `provider:model`, or a glob (`gpt-4*`); search: text anywhere in
    the prompt, system prompt, messages, response or error message (case-insensitive);
    since/until: a window such as "1h" (see parse_since); outcome: ok, error, cancelled or
    timeout. Calls still being written by this process are waited for first."""
    if n is not None and n < 0:
        raise ValueError(f"n must be a positive number of calls or None for all, got {n}")
    where, args = _filters(model, provider, search, since, until, outcome, notebook)
    sql = f"SELECT {', '.join(_FIELDS)} FROM calls"  # nosec B608  # constant columns; filters bound as ?
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY started_at DESC, id DESC"
    if n is not None:
        sql += f" LIMIT {int(n)}"
    rows = read_rows(sql, args, path)
    return Calls(_call(row) for row in reversed(rows))


def _filters(
    model: str | None,
    provider: str | None,
    search: str | None,
    since: TimeSpec | None,
    until: TimeSpec | None,
    outcome: str | None,
    notebook: str | None,
) -> tuple[list[str], list[Any]]:
    where: list[str] = []
    args: list[Any] = []
    if model:
        if ":" in model and provider is None:
            provider, model = model.split(":", 1)
        if any(ch in model for ch in "*?["):
            where.append("model GLOB ?")
        else:
            where.append("model = ?")
        args.append(model)
    if provider:
        where.append("provider = ?")
        args.append(provider)
    if search:
        pattern = "%" + re.sub(r"([\\%_])", r"\\\1", search) + "%"
        where.append("(" + " OR ".join(f"{c} LIKE ? ESCAPE '\\'" for c in _SEARCHED) + ")")
        args.extend([pattern] * len(_SEARCHED))
    if since is not None:
        where.append("started_at >= ?")
        args.append(parse_since(since))
    if until is not None:
        where.append("started_at < ?")
        args.append(parse_since(until))
    if outcome:
        where.append("outcome = ?")
        args.append(outcome)
    if notebook:
        where.append("notebook = ?")
        args.append(notebook)
    return where, args


def read_rows(sql: str, args: Iterable[Any], path: str | Path | None) -> list[tuple[Any, ...]]:
    conn = open_log(_resolve(path))
    if conn is None:
        return []
    try:
        return conn.execute(sql, list(args)).fetchall()
    finally:
        conn.close()


def _resolve(path: str | Path | None) -> Path:
    """An explicit path, else the log's own (after writing what this process queued)."""
    if path is not None:
        return Path(path).expanduser()
    WRITER.flush()
    return WRITER.path


def _call(row: tuple[Any, ...]) -> Call:
    values = dict(zip(_FIELDS, row, strict=True))
    values["stream"] = bool(values["stream"])
    values["cached"] = bool(values["cached"])
    return Call(**values)
