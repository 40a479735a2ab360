"""What a map returns and reports while it runs: MapResult (answers in input order,
errors by index, usage, cost, cache hits; a DataFrame with the parsed fields as columns)
and MapProgress (live counts for a progress view). core/mapping.py fills them in."""

from __future__ import annotations

import collections
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, overload

from .collect import ResponseBuilder
from .schema import OutputSchema
from .types import LLMResponse, Usage

__all__ = ["MapProgress", "MapResult", "Row"]

#: How many finished answers MapProgress.recent keeps (for a live view).
RECENT_ANSWERS = 5

Row = Mapping[str, Any] | str


@dataclass
class MapResult(Sequence[LLMResponse | None]):
    """Answers in input order: result[i] is row i's LLMResponse, or None if it failed
    (its error is result.errors[i]) or never ran (the map was cancelled first). With
    schema=, an answer that did not parse is kept and its error is in result.errors too."""

    model: str
    rows: list[Row] = field(default_factory=list)
    responses: list[LLMResponse | None] = field(default_factory=list)
    errors: dict[int, BaseException] = field(default_factory=dict)
    costs: list[float | None] = field(default_factory=list)
    cached: int = 0
    cancelled: bool = False
    elapsed: float = 0.0
    schema: OutputSchema | None = None

    def __len__(self) -> int:
        return len(self.responses)

    @overload
    def __getitem__(self, index: int) -> LLMResponse | None: ...

    @overload
    def __getitem__(self, index: slice) -> list[LLMResponse | None]: ...

    def __getitem__(self, index: int | slice) -> LLMResponse | list[LLMResponse | None] | None:
        return self.responses[index]

    @property
    def usage(self) -> Usage:
        """Tokens of every answered row (cached answers included: they were paid once)."""
        i = o = 0
        for r in self.responses:
            if r is not None:
                i += r.usage.input_tokens
                o += r.usage.output_tokens
        return Usage.of(i, o)

    @property
    def cost(self) -> float | None:
        """USD of the answers that were not cached; None when a price is unknown."""
        total = 0.0
        for r, c in zip(self.responses, self.costs, strict=True):
            if r is None or r.metadata.get("cached"):
                continue
            if c is None:
                return None
            total += c
        return total

    @property
    def texts(self) -> list[str | None]:
        return [None if r is None else r.content for r in self.responses]

    def to_pandas(self) -> Any:
        """Input fields + answer, tokens, latency, TTFT, cost, cached, error (needs pandas);
        with schema=, one column per field of the parsed answer (empty where it failed)."""
        try:
            import pandas as pd  # an optional dependency
        except ImportError:
            raise ImportError("to_pandas() needs pandas: pip install pandas") from None
        records = []
        for i, r in enumerate(self.responses):
            row = self.rows[i] if i < len(self.rows) else {}
            record: dict[str, Any] = dict(row) if isinstance(row, Mapping) else {"row": row}
            err = self.errors.get(i)
            record.update(
                answer=None if r is None else r.content,
                input_tokens=None if r is None else r.usage.input_tokens,
                output_tokens=None if r is None else r.usage.output_tokens,
                latency_s=None if r is None else r.latency,
                ttft_s=None if r is None else r.time_to_first_token,
                cost_usd=self.costs[i],
                cached=bool(r is not None and r.metadata.get("cached")),
                error=None if err is None else f"{type(err).__name__}: {err}",
            )
            if self.schema is not None:
                record.update(_parsed_columns(self.schema, record, r))
            records.append(record)
        return pd.DataFrame.from_records(records)

    def __repr__(self) -> str:
        cost = "unknown" if self.cost is None else f"${self.cost:.6f}"
        state = ", cancelled" if self.cancelled else ""
        answers = sum(
            1 for i, r in enumerate(self.responses) if r is not None and i not in self.errors
        )  # rows a cancel cut short are None and no error: not answers
        return (
            f"MapResult({self.model}: {answers} answers, "
            f"{len(self.errors)} errors, {self.cached} cached, tokens={self.usage.input_tokens}"
            f"+{self.usage.output_tokens}, cost={cost}{state})"
        )


def _parsed_columns(
    schema: OutputSchema, record: Mapping[str, Any], response: LLMResponse | None
) -> dict[str, Any]:
    """The parsed answer's fields as columns (the schema's properties; one column "parsed"
    when it has none); a name already taken by an input field gets a "parsed." prefix."""
    properties = schema.schema.get("properties")
    parsed = None if response is None else response.parsed
    if not isinstance(properties, Mapping) or not properties:
        return {"parsed": parsed}
    columns: dict[str, Any] = {}
    for name in properties:
        if parsed is None:
            value = None
        elif isinstance(parsed, Mapping):
            value = parsed.get(name)
        else:
            value = getattr(parsed, name, None)
        columns[f"parsed.{name}" if name in record else str(name)] = value
    return columns


@dataclass
class MapProgress:
    """Live state of a running map, for a progress view; `result` is the partial result
    (complete once the map returns, and still there when it was cancelled)."""

    total: int | None = None
    on_update: Callable[[MapProgress], None] | None = None
    result: MapResult = field(default_factory=lambda: MapResult(""))
    done: int = 0
    failed: int = 0
    started: float = field(default_factory=time.perf_counter)
    in_flight: dict[int, ResponseBuilder] = field(default_factory=dict)
    recent: collections.deque[tuple[int, str]] = field(
        default_factory=lambda: collections.deque(maxlen=RECENT_ANSWERS)
    )

    @property
    def cached(self) -> int:
        return self.result.cached

    @property
    def output_tokens(self) -> int:
        return self.result.usage.output_tokens

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    @property
    def tokens_per_s(self) -> float:
        t = self.elapsed
        return self.output_tokens / t if t > 0 else 0.0

    @property
    def cost(self) -> float | None:
        return self.result.cost

    @property
    def eta(self) -> float | None:
        """Seconds left at the pace so far; None when unknown."""
        finished = self.done + self.failed
        if self.total is None or finished == 0:
            return None
        return self.elapsed / finished * (self.total - finished)

    def _notify(self) -> None:
        if self.on_update is not None:
            self.on_update(self)
