"""The dashboard: per provider and model over a time window, from the call log.

Requests, error rate and errors by kind, p50/p95 time to first token and duration, output
tokens per second, tokens and cost (also per time bucket, for "over time"), cache hit rate.
Shown as a text or HTML table; `plot()` draws charts when matplotlib is installed.
Percentiles are statistics.quantiles' inclusive method (linear interpolation)."""

from __future__ import annotations

import datetime as _dt
import html
import statistics
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from .query import TimeSpec, parse_since, read_rows
from .render import dataframe, html_table, text_table

__all__ = ["Bucket", "Dashboard", "ModelStats", "dashboard", "percentile"]

ERROR_OUTCOMES = ("error", "timeout")
DEFAULT_BUCKETS = 24


def percentile(values: Sequence[float], p: float) -> float | None:
    """The p-th percentile (0-100) of values, None for none."""
    if not values:
        return None
    if len(values) == 1:
        return float(values[0])
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return cuts[int(p) - 1] if 1 <= p <= 99 else float(max(values) if p > 99 else min(values))


@dataclass(frozen=True, slots=True)
class ModelStats:
    """One provider and model over the window."""

    provider: str
    model: str
    requests: int
    errors: int
    error_rate: float
    errors_by_kind: dict[str, int]
    cancelled: int
    ttft_p50: float | None
    ttft_p95: float | None
    duration_p50: float | None  # durations: of the calls that ended ok
    duration_p95: float | None
    tokens_per_s: float | None  # output tokens / seconds, over the calls that ended ok
    input_tokens: int
    output_tokens: int
    cost_usd: float | None  # None when no call had a known price
    cache_hits: int
    cache_hit_rate: float

    @property
    def name(self) -> str:
        return f"{self.provider}:{self.model}"


@dataclass(frozen=True, slots=True)
class Bucket:
    """Tokens and cost of one provider and model in one slice of the window."""

    start: float  # Unix seconds
    provider: str
    model: str
    requests: int
    errors: int
    tokens: int
    cost_usd: float


@dataclass(frozen=True, slots=True, repr=False)
class Dashboard:
    """Aggregates of the call log over [since, until)."""

    since: float
    until: float
    bucket_seconds: float
    models: list[ModelStats] = field(default_factory=list)
    timeline: list[Bucket] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return sum(m.requests for m in self.models)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_pandas(self) -> Any:
        """The per-model table as a DataFrame (needs pandas)."""
        return dataframe([asdict(m) for m in self.models], [f.name for f in fields(ModelStats)])

    def rows(self) -> list[list[str]]:
        """The table's header and rows, formatted."""
        head = [
            "model",
            "requests",
            "errors",
            "first token p50 / p95",
            "duration p50 / p95",
            "speed",
            "tokens in / out",
            "cost",
            "cache hits",
        ]
        out = [head]
        for m in self.models:
            kinds = ", ".join(f"{k} {v}" for k, v in sorted(m.errors_by_kind.items()))
            out.append(
                [
                    m.name,
                    str(m.requests),
                    f"{m.error_rate:.0%}" + (f" ({kinds})" if kinds else ""),
                    f"{_seconds(m.ttft_p50)} / {_seconds(m.ttft_p95)}",
                    f"{_seconds(m.duration_p50)} / {_seconds(m.duration_p95)}",
                    "-" if m.tokens_per_s is None else f"{m.tokens_per_s:.0f} tok/s",
                    f"{m.input_tokens:,} / {m.output_tokens:,}",
                    "unknown" if m.cost_usd is None else f"${m.cost_usd:.4f}",
                    f"{m.cache_hit_rate:.0%}",
                ]
            )
        return out

    def title(self) -> str:
        start = _dt.datetime.fromtimestamp(self.since).strftime("%Y-%m-%d %H:%M")
        end = _dt.datetime.fromtimestamp(self.until).strftime("%Y-%m-%d %H:%M")
        return f"n3_notebook calls {start} - {end}: {self.requests} requests"

    def table(self) -> str:
        rows = self.rows()
        if len(rows) == 1:
            return self.title() + "\n(no calls in this window)"
        return self.title() + "\n" + text_table(rows)

    def __str__(self) -> str:
        return self.table()

    __repr__ = __str__  # a table, also where HTML is not shown

    def _repr_html_(self) -> str:
        return f"<div><strong>{html.escape(self.title())}</strong>{html_table(self.rows())}</div>"

    def plot(self) -> Any:
        """A matplotlib Figure: TTFT and duration percentiles per model, tokens and cost
        over time. Needs matplotlib (the table works without it)."""
        try:
            import matplotlib.pyplot as plt  # an optional dependency (the dashboard extra)
        except ImportError as exc:
            raise ImportError(
                "plot() needs matplotlib: pip install matplotlib (or use .table())"
            ) from exc
        fig, axes = plt.subplots(2, 2, figsize=(11, 7), layout="constrained")
        names = [m.name for m in self.models]
        _bars(
            axes[0][0], names, [m.ttft_p50 for m in self.models], [m.ttft_p95 for m in self.models]
        )
        axes[0][0].set_title("time to first token (s), p50 and p95")
        _bars(
            axes[0][1],
            names,
            [m.duration_p50 for m in self.models],
            [m.duration_p95 for m in self.models],
        )
        axes[0][1].set_title("duration (s), p50 and p95")
        for m in self.models:
            points = [b for b in self.timeline if (b.provider, b.model) == (m.provider, m.model)]
            when = [_dt.datetime.fromtimestamp(b.start) for b in points]
            axes[1][0].plot(when, [b.tokens for b in points], marker=".", label=m.name)
            axes[1][1].plot(when, [b.cost_usd for b in points], marker=".", label=m.name)
        axes[1][0].set_title("tokens per bucket")
        axes[1][1].set_title("cost per bucket ($)")
        for ax in axes[1]:
            ax.tick_params(axis="x", labelrotation=30)
            if self.models:
                ax.legend(fontsize="small")
        fig.suptitle(self.title())
        plt.close(fig)  # returned, not shown: a notebook displays it once
        return fig


def _bars(ax: Any, names: list[str], p50: list[float | None], p95: list[float | None]) -> None:
    xs = range(len(names))
    ax.bar([x - 0.2 for x in xs], [v or 0.0 for v in p50], width=0.4, label="p50")
    ax.bar([x + 0.2 for x in xs], [v or 0.0 for v in p95], width=0.4, label="p95")
    ax.set_xticks(list(xs), names, rotation=20, ha="right", fontsize="small")
    ax.legend(fontsize="small")


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}s"


_COLUMNS = (
    "provider",
    "model",
    "started_at",
    "outcome",
    "error_kind",
    "ttft_s",
    "duration_s",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "cached",
)


def dashboard(
    since: TimeSpec = "1h",
    *,
    until: TimeSpec | None = None,
    buckets: int = DEFAULT_BUCKETS,
    path: str | Path | None = None,
) -> Dashboard:
    """Aggregate the calls started in [since, until) (until: now), per provider and model;
    `buckets` slices of the window for the over-time series."""
    if buckets < 1:
        raise ValueError(f"buckets must be at least 1, got {buckets}")
    now = time.time()
    start = parse_since(since, now=now)
    end = now if until is None else parse_since(until, now=now)
    if end <= start:
        raise ValueError(f"the window is empty: since={since!r} is not before until={until!r}")
    rows = read_rows(
        f"SELECT {', '.join(_COLUMNS)} FROM calls WHERE started_at >= ? AND started_at < ? "  # nosec B608  # columns are constants, values bound
        "ORDER BY started_at",
        (start, end),
        path,
    )
    width = (end - start) / buckets
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        r = dict(zip(_COLUMNS, row, strict=True))
        groups.setdefault((r["provider"], r["model"]), []).append(r)
    models = [_stats(p, m, calls) for (p, m), calls in sorted(groups.items())]
    timeline = [
        b for (p, m), calls in sorted(groups.items()) for b in _timeline(p, m, calls, start, width)
    ]
    return Dashboard(since=start, until=end, bucket_seconds=width, models=models, timeline=timeline)


def _stats(provider: str, model: str, calls: list[dict[str, Any]]) -> ModelStats:
    n = len(calls)
    failed = [c for c in calls if c["outcome"] in ERROR_OUTCOMES]
    ok = [c for c in calls if c["outcome"] == "ok"]
    ttft = [c["ttft_s"] for c in calls if c["ttft_s"] is not None]
    duration = [c["duration_s"] for c in ok if c["duration_s"] is not None]
    ok_seconds = sum(c["duration_s"] or 0.0 for c in ok)
    ok_tokens = sum(c["output_tokens"] for c in ok)
    costs = [c["cost_usd"] for c in calls if c["cost_usd"] is not None]
    hits = sum(1 for c in calls if c["cached"])
    return ModelStats(
        provider=provider,
        model=model,
        requests=n,
        errors=len(failed),
        error_rate=len(failed) / n,
        errors_by_kind=dict(Counter(c["error_kind"] or c["outcome"] for c in failed)),
        cancelled=sum(1 for c in calls if c["outcome"] == "cancelled"),
        ttft_p50=percentile(ttft, 50),
        ttft_p95=percentile(ttft, 95),
        duration_p50=percentile(duration, 50),
        duration_p95=percentile(duration, 95),
        tokens_per_s=ok_tokens / ok_seconds if ok_seconds > 0 and ok_tokens else None,
        input_tokens=sum(c["input_tokens"] for c in calls),
        output_tokens=sum(c["output_tokens"] for c in calls),
        cost_usd=sum(costs) if costs else None,
        cache_hits=hits,
        cache_hit_rate=hits / n,
    )


def _timeline(
    provider: str, model: str, calls: list[dict[str, Any]], start: float, width: float
) -> list[Bucket]:
    slots: dict[int, list[dict[str, Any]]] = {}
    for c in calls:
        slots.setdefault(int((c["started_at"] - start) // width), []).append(c)
    return [
        Bucket(
            start=start + i * width,
            provider=provider,
            model=model,
            requests=len(cs),
            errors=sum(1 for c in cs if c["outcome"] in ERROR_OUTCOMES),
            tokens=sum(c["input_tokens"] + c["output_tokens"] for c in cs),
            cost_usd=sum(c["cost_usd"] or 0.0 for c in cs),
        )
        for i, cs in sorted(slots.items())
    ]
