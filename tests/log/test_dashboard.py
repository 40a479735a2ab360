"""dashboard(): per provider and model aggregates over a window, as tables and charts."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import n3_notebook.log as log
from n3_notebook.log import percentile

from .conftest import record, write


def test_percentile() -> None:
    assert percentile([], 50) is None
    assert percentile([3.0], 95) == 3.0
    assert percentile([1.0, 2.0, 3.0, 4.0, 5.0], 50) == 3.0
    values = [float(i) for i in range(1, 101)]
    assert percentile(values, 95) == pytest.approx(95.05)


def test_aggregates_per_provider_and_model(log_db: Path) -> None:
    now = time.time()
    recs = [
        record(
            started_at=now - 60 + i,
            time_to_first_token=0.1 * (i + 1),
            duration=1.0 + i,
            input_tokens=10,
            output_tokens=100,
        )
        for i in range(10)
    ]
    recs += [
        record(started_at=now - 30, outcome="error", error_type="RateLimitError", duration=0.1),
        record(started_at=now - 20, outcome="error", error_type="RateLimitError", duration=0.1),
        record(started_at=now - 10, outcome="timeout", error_type="LLMTimeoutError"),
        record(started_at=now - 5, outcome="cancelled", output_tokens=3),
        record(
            "anthropic",
            "claude-3-5-haiku-latest",
            started_at=now - 5,
            duration=2.0,
            time_to_first_token=0.5,
            input_tokens=5,
            output_tokens=40,
            extra={"cached": True},
        ),
        record(started_at=now - 7200),  # outside the window
    ]
    write(*recs)
    board = log.dashboard(since="1h")
    assert [m.name for m in board.models] == [
        "anthropic:claude-3-5-haiku-latest",
        "openai:gpt-4o-mini",
    ]
    claude, gpt = board.models
    assert gpt.requests == 14 and gpt.errors == 3 and gpt.cancelled == 1
    assert gpt.error_rate == pytest.approx(3 / 14)
    assert gpt.errors_by_kind == {"RateLimitError": 2, "LLMTimeoutError": 1}
    assert gpt.ttft_p50 == pytest.approx(0.55)
    assert gpt.ttft_p95 == pytest.approx(0.955)
    assert gpt.duration_p50 == pytest.approx(5.5)  # of the ten calls that ended ok
    assert gpt.tokens_per_s == pytest.approx(1000 / sum(1.0 + i for i in range(10)))
    assert gpt.input_tokens == 100 and gpt.output_tokens == 1003
    assert gpt.cost_usd is not None and gpt.cost_usd > 0
    assert gpt.cache_hits == 0
    assert claude.cache_hits == 1 and claude.cache_hit_rate == 1.0
    assert board.requests == 15
    assert sum(b.requests for b in board.timeline) == 15
    assert sum(b.tokens for b in board.timeline if b.model == "gpt-4o-mini") == 1103
    assert all(board.since <= b.start < board.until for b in board.timeline)


def test_an_empty_window(log_db: Path) -> None:
    board = log.dashboard(since="5m")
    assert board.models == [] and "no calls" in board.table()


def test_bad_windows_are_explained(log_db: Path) -> None:
    with pytest.raises(ValueError, match="is not before"):
        log.dashboard(since="1h", until="2h")
    with pytest.raises(ValueError, match="buckets"):
        log.dashboard(buckets=0)


def test_table_and_html(log_db: Path) -> None:
    write(
        record(time_to_first_token=0.2, duration=1.0, output_tokens=10),
        record(outcome="error", error_type="ServerError"),
    )
    board = log.dashboard()
    text = board.table()
    assert "openai:gpt-4o-mini" in text and "ServerError 1" in text and "50%" in text
    assert "<table>" in board._repr_html_()


def test_plot_when_matplotlib_is_there(log_db: Path) -> None:
    pytest.importorskip("matplotlib")
    write(record(time_to_first_token=0.2, duration=1.0, output_tokens=10))
    fig = log.dashboard().plot()
    assert len(fig.axes) == 4


def test_to_pandas(log_db: Path) -> None:
    pytest.importorskip("pandas")
    write(record(duration=1.0, output_tokens=5))
    frame = log.dashboard().to_pandas()
    assert list(frame["requests"]) == [1]


def test_repr_is_the_table(log_db: Path) -> None:
    write(record(duration=1.0, output_tokens=5))
    board = log.dashboard()
    assert repr(board) == str(board) == board.table()
    calls = log.query()
    assert repr(calls) == calls.table()
