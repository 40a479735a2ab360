"""The result of sending one prompt to several models: answers plus a summary table."""

from __future__ import annotations

import html
import statistics
from dataclasses import dataclass, field
from typing import Any

from .errors import LLMError
from .pricing import response_cost
from .registry import resolve_model
from .types import LLMResponse

COLUMNS = (
    "model",
    "ttft_s",
    "total_s",
    "input_tokens",
    "output_tokens",
    "tokens_per_s",
    "finish_reason",
    "cost_usd",
    "runs",
    "error",
)


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def summarize(model: str, runs: list[LLMResponse], error: str | None = None) -> dict[str, Any]:
    """One table row: medians over the runs that produced an answer."""
    ok = [r for r in runs if r.finish_reason not in ("error", "cancelled")] or runs
    ttft = [r.time_to_first_token for r in ok if r.time_to_first_token is not None]
    total = [r.latency for r in ok if r.latency is not None]
    rates = []
    for r in ok:
        if r.latency and r.time_to_first_token is not None and r.usage.output_tokens > 1:
            span = r.latency - r.time_to_first_token
            if span > 0:
                rates.append(r.usage.output_tokens / span)
    provider, name = _resolve(model)
    costs = [response_cost(r, provider, name) for r in ok]
    known = [c for c in costs if c is not None]
    last = runs[-1] if runs else None
    return {
        "model": model,
        "ttft_s": _median(ttft),
        "total_s": _median(total),
        "input_tokens": int(_median([r.usage.input_tokens for r in ok]) or 0) if ok else None,
        "output_tokens": int(_median([r.usage.output_tokens for r in ok]) or 0) if ok else None,
        "tokens_per_s": _median(rates),
        "finish_reason": "error" if error else (last.finish_reason if last else None),
        "cost_usd": _median(known) if known and len(known) == len(costs) else None,
        "runs": len(runs),
        "error": error,
    }


def _resolve(spec: str) -> tuple[str | None, str | None]:
    """(provider, model) a model string names (aliases resolved), or (None, None)."""
    try:
        return resolve_model(spec)
    except LLMError:
        return None, None


@dataclass
class ComparisonResult:
    """responses: model -> its (last) LLMResponse; runs: model -> every run; rows: table."""

    prompt: str
    responses: dict[str, LLMResponse | None] = field(default_factory=dict)
    runs: dict[str, list[LLMResponse]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    rows: list[dict[str, Any]] = field(default_factory=list)

    def __getitem__(self, model: str) -> LLMResponse | None:
        return self.responses[model]

    def to_pandas(self) -> Any:
        """The table as a DataFrame indexed by model (needs pandas)."""
        try:  # an optional dependency
            import pandas as pd
        except ImportError:
            raise ImportError("to_pandas() needs pandas: pip install pandas") from None

        return pd.DataFrame(self.rows, columns=list(COLUMNS)).set_index("model")

    def table_text(self) -> str:
        head = ["model", "ttft", "total", "in", "out", "tok/s", "finish", "cost", "runs"]
        cells = [head] + [_format_row(r) for r in self.rows]
        widths = [max(len(c[i]) for c in cells) for i in range(len(head))]
        lines = [
            "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
            for row in cells
        ]
        lines.insert(1, "  ".join("-" * w for w in widths))
        lines += [f"{r['model']}: {r['error']}" for r in self.rows if r.get("error")]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.table_text()

    def _repr_html_(self) -> str:
        head = ["model", "first token", "total", "in", "out", "tok/s", "finish", "cost", "runs"]
        th = "".join(f"<th>{h}</th>" for h in head)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in _format_row(r)) + "</tr>"
            for r in self.rows
        )
        errors = "".join(
            f"<div style='color:#d93025'>{html.escape(r['model'])}: {html.escape(r['error'])}</div>"
            for r in self.rows
            if r.get("error")
        )
        return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>{errors}"


def _format_row(r: dict[str, Any]) -> list[str]:
    def num(v: Any, fmt: str) -> str:
        return "—" if v is None else format(v, fmt)

    c = r.get("cost_usd")
    return [
        str(r["model"]),
        num(r.get("ttft_s"), ".2f") + ("s" if r.get("ttft_s") is not None else ""),
        num(r.get("total_s"), ".2f") + ("s" if r.get("total_s") is not None else ""),
        num(r.get("input_tokens"), "d"),
        num(r.get("output_tokens"), "d"),
        num(r.get("tokens_per_s"), ".0f"),
        str(r.get("finish_reason") or "—"),
        "unknown" if c is None else f"${c:.6f}",
        str(r.get("runs", 0)),
    ]
