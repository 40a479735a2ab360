"""Several models over one dataset: `await amap_models(template, rows, models=[...])`.

Each model runs its own amap (its own window, budget and cache) at the same time over the
same rows. The result puts the answers side by side per row and summarises each model:
p50 / p95 latency and time to first token, tokens, cost, errors and cache hits; `plot()`
draws that summary with matplotlib (optional; `table_text()` is the plain version).
"""

from __future__ import annotations

import asyncio
import html
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .base import BaseProvider
from .map_result import MapProgress, MapResult, Row
from .mapping import amap

__all__ = ["MapComparison", "amap_models"]

SUMMARY_COLUMNS = (
    "model",
    "rows",
    "errors",
    "cached",
    "latency_p50_s",
    "latency_p95_s",
    "ttft_p50_s",
    "input_tokens",
    "output_tokens",
    "cost_usd",
)


def _quantile(values: Sequence[float], q: float) -> float | None:
    """The q-quantile (inclusive method), None for no values."""
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1]


def summarize(model: str, result: MapResult) -> dict[str, Any]:
    """One summary row for a model's map; latencies count answers that were not cached."""
    fresh = [r for r in result if r is not None and not r.metadata.get("cached")]
    latency = [r.latency for r in fresh if r.latency is not None]
    ttft = [r.time_to_first_token for r in fresh if r.time_to_first_token is not None]
    usage = result.usage
    return {
        "model": model,
        "rows": len(result),
        "errors": len(result.errors),
        "cached": result.cached,
        "latency_p50_s": _quantile(latency, 0.5),
        "latency_p95_s": _quantile(latency, 0.95),
        "ttft_p50_s": _quantile(ttft, 0.5),
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cost_usd": result.cost,
    }


@dataclass
class MapComparison:
    """results: model -> its MapResult (same rows, same order)."""

    template: str
    results: dict[str, MapResult] = field(default_factory=dict)

    def __getitem__(self, model: str) -> MapResult:
        return self.results[model]

    @property
    def models(self) -> list[str]:
        return list(self.results)

    def summary(self) -> list[dict[str, Any]]:
        return [summarize(m, r) for m, r in self.results.items()]

    def rows(self) -> list[dict[str, Any]]:
        """Per input row: its fields, then each model's answer (or its error)."""
        first = next(iter(self.results.values()), None)
        if first is None:
            return []
        out = []
        for i, row in enumerate(first.rows):
            record: dict[str, Any] = dict(row) if isinstance(row, Mapping) else {"row": row}
            for model, result in self.results.items():
                answer = result[i] if i < len(result) else None
                error = result.errors.get(i)
                record[model] = (
                    answer.content if answer is not None else (f"error: {error}" if error else None)
                )
            out.append(record)
        return out

    def to_pandas(self) -> Any:
        """The side-by-side answers as a DataFrame (needs pandas)."""
        try:
            import pandas as pd  # an optional dependency
        except ImportError:
            raise ImportError("to_pandas() needs pandas: pip install pandas") from None
        return pd.DataFrame.from_records(self.rows())

    def summary_pandas(self) -> Any:
        """The per-model summary as a DataFrame indexed by model (needs pandas)."""
        try:
            import pandas as pd  # an optional dependency
        except ImportError:
            raise ImportError("summary_pandas() needs pandas: pip install pandas") from None
        return pd.DataFrame(self.summary(), columns=list(SUMMARY_COLUMNS)).set_index("model")

    def plot(self) -> Any:
        """A matplotlib Figure: p50/p95 latency, output tokens and cost per model."""
        try:
            from matplotlib.figure import Figure  # an optional dependency
        except ImportError:
            raise ImportError(
                "plot() needs matplotlib: pip install matplotlib (table_text() shows the "
                "same summary as text)"
            ) from None
        summary = self.summary()
        names = [s["model"] for s in summary]
        fig = Figure(figsize=(4 * 3, 3.2), layout="constrained")
        axes = fig.subplots(1, 3)
        positions = list(range(len(names)))
        p50 = [s["latency_p50_s"] or 0.0 for s in summary]
        p95 = [s["latency_p95_s"] or 0.0 for s in summary]
        axes[0].bar([p - 0.2 for p in positions], p50, width=0.4, label="p50")
        axes[0].bar([p + 0.2 for p in positions], p95, width=0.4, label="p95")
        axes[0].set_title("latency (s)")
        axes[0].legend()
        axes[1].bar(positions, [s["output_tokens"] for s in summary])
        axes[1].set_title("output tokens")
        axes[2].bar(positions, [s["cost_usd"] or 0.0 for s in summary])
        axes[2].set_title("cost (USD; 0 = unknown or cached)")
        for ax in axes:
            ax.set_xticks(positions, names, rotation=20, ha="right")
        return fig

    def table_text(self) -> str:
        head = ["model", "rows", "errors", "cached", "p50", "p95", "ttft", "in", "out", "cost"]
        cells = [head] + [_cells(s) for s in self.summary()]
        widths = [max(len(c[i]) for c in cells) for i in range(len(head))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(line.rstrip() for line in lines)

    def __repr__(self) -> str:
        return self.table_text()

    def _repr_html_(self) -> str:
        head = ["model", "rows", "errors", "cached", "p50", "p95", "first token", "in", "out"]
        th = "".join(f"<th>{h}</th>" for h in [*head, "cost"])
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in _cells(s)) + "</tr>"
            for s in self.summary()
        )
        return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def _cells(s: Mapping[str, Any]) -> list[str]:
    def sec(v: float | None) -> str:
        return "—" if v is None else f"{v:.2f}s"

    cost = s["cost_usd"]
    return [
        str(s["model"]),
        str(s["rows"]),
        str(s["errors"]),
        str(s["cached"]),
        sec(s["latency_p50_s"]),
        sec(s["latency_p95_s"]),
        sec(s["ttft_p50_s"]),
        str(s["input_tokens"]),
        str(s["output_tokens"]),
        "unknown" if cost is None else f"${cost:.6f}",
    ]


async def amap_models(
    template: str,
    rows: Iterable[Row] | Any,
    *,
    models: Sequence[str | BaseProvider],
    labels: Sequence[str] | None = None,
    progress: Mapping[str, MapProgress] | None = None,
    **options: Any,
) -> MapComparison:
    """amap() over the same rows for each model at once; options as amap's. The rows are
    read once, up front (every model needs them). A model is a model string or a provider;
    `labels` name them in the result (default: the string, or provider:model). `progress`
    maps a label to its MapProgress, for a live view per model."""
    if not models:
        raise ValueError("name at least one model")
    names = list(labels) if labels is not None else [_label(m) for m in models]
    if len(names) != len(models) or len(set(names)) != len(names):
        raise ValueError("labels must name each model once")
    is_frame = hasattr(rows, "itertuples") and hasattr(rows, "columns")
    table = rows if is_frame else list(rows)  # a DataFrame is read by each map; others once
    comparison = MapComparison(template)
    tracks = {n: (progress or {}).get(n) or MapProgress() for n in names}
    try:
        done = await asyncio.gather(
            *(
                amap(template, table, model=m, progress=tracks[n], **options)
                for m, n in zip(models, names, strict=True)
            )
        )
    finally:
        for name in names:  # the partial results, also when cancelled
            comparison.results[name] = tracks[name].result
    for name, result in zip(names, done, strict=True):
        comparison.results[name] = result
    return comparison


def _label(model: str | BaseProvider) -> str:
    return model if isinstance(model, str) else f"{model.name}:{model.model}"
