"""query(): the last calls, filtered; time windows; tables and DataFrames."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pytest

import n3_notebook.log as log
from n3_notebook.log import parse_since

from .conftest import record, write


def test_parse_since() -> None:
    now = 1_000_000.0
    assert parse_since("90s", now=now) == now - 90
    assert parse_since("15m", now=now) == now - 900
    assert parse_since("1h", now=now) == now - 3600
    assert parse_since("1.5 hours", now=now) == now - 5400
    assert parse_since("2d", now=now) == now - 2 * 86400
    assert parse_since("1w", now=now) == now - 7 * 86400
    assert parse_since(dt.timedelta(minutes=5), now=now) == now - 300
    when = dt.datetime(2026, 1, 2, 3, 4, tzinfo=dt.UTC)
    assert parse_since(when) == when.timestamp()
    assert parse_since(12345) == 12345.0
    with pytest.raises(ValueError, match="'90s', '15m', '1h'"):
        parse_since("yesterday")
    with pytest.raises(TypeError):
        parse_since(True)


def test_the_last_n_calls_oldest_first(log_db: Path) -> None:
    t = time.time() - 100
    write(*(record(prompt=f"p{i}", started_at=t + i) for i in range(30)))
    assert [c.prompt for c in log.query(3)] == ["p27", "p28", "p29"]
    assert len(log.query()) == 20
    assert len(log.query(None)) == 30
    assert log.query(0) == []
    with pytest.raises(ValueError, match="positive number"):
        log.query(-1)


def test_filters(log_db: Path) -> None:
    t = time.time()
    write(
        record("openai", "gpt-4o-mini", prompt="Classify this INVOICE", started_at=t - 7200),
        record("openai", "gpt-4o", prompt="a 100% sure thing", started_at=t - 60),
        record("anthropic", "claude-3-5-haiku-latest", prompt="x", answer="the invoice total"),
        record(
            "gemini",
            "gemini-2.0-flash",
            outcome="error",
            error_type="RateLimitError",
            error_message="quota for snake_case exceeded",
            prompt="y",
            answer="",
        ),
    )
    assert [c.model for c in log.query(model="gpt-4o")] == ["gpt-4o"]
    assert [c.model for c in log.query(model="openai:gpt-4o-mini")] == ["gpt-4o-mini"]
    assert [c.model for c in log.query(model="gpt-4o*")] == ["gpt-4o-mini", "gpt-4o"]
    assert [c.provider for c in log.query(provider="anthropic")] == ["anthropic"]
    assert [c.provider for c in log.query(search="invoice")] == ["openai", "anthropic"]
    assert [c.prompt for c in log.query(search="100%")] == ["a 100% sure thing"]
    assert [c.provider for c in log.query(search="snake_case")] == ["gemini"]
    assert log.query(search="snakexcase") == []  # "_" is a literal, not a wildcard
    assert [c.model for c in log.query(since="1h")] == [
        "gpt-4o",
        "claude-3-5-haiku-latest",
        "gemini-2.0-flash",
    ]
    assert [c.model for c in log.query(until="1h")] == ["gpt-4o-mini"]
    assert [c.error_kind for c in log.query(outcome="error")] == ["RateLimitError"]


def test_origin_filter(log_db: Path) -> None:
    with log.origin("a.ipynb", 1):
        write(record(prompt="from a"))
    write(record(prompt="from nowhere"))
    assert [c.prompt for c in log.query(notebook="a.ipynb")] == ["from a"]


def test_a_missing_file_is_an_empty_log(tmp_path: Path) -> None:
    missing = tmp_path / "never.db"
    assert log.query(path=missing) == []
    assert not missing.exists()


def test_table_html_and_pandas(log_db: Path) -> None:
    write(
        record(prompt="line one\nline two <b>" + "long " * 40),
        record(outcome="error", error_type="ServerError", prompt="bad"),
    )
    calls = log.query()
    text = calls.table()
    assert text.splitlines()[0].split()[:4] == ["time", "provider", "model", "outcome"]
    assert "line one line two <b>" in text and "…" in text
    assert "error: ServerError" in text
    assert "&lt;b&gt;" in calls._repr_html_()
    pd = pytest.importorskip("pandas")
    frame = calls.to_pandas()
    assert isinstance(frame, pd.DataFrame)
    assert list(frame["outcome"]) == ["ok", "error"]
    assert {"prompt", "response", "cost_usd", "ttft_s", "notebook"} <= set(frame.columns)


def test_call_tokens_per_second(log_db: Path) -> None:
    write(record(output_tokens=50, duration=2.0), record(output_tokens=0, duration=1.0))
    fast, empty = log.query()
    assert fast.tokens_per_s == 25.0 and empty.tokens_per_s is None


def test_details_say_when_text_was_not_stored(log_db: Path) -> None:
    log.configure(store_text=False)
    write(record(prompt="hidden", input_tokens=3, output_tokens=4, duration=0.5))
    (call,) = log.query()
    text = call.details()
    assert "(text not stored)" in text and "hidden" not in text and "3+4 tokens" in text
