"""The stats line under a stream: time to first token, tokens, tokens/s, elapsed, finish."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Stats:
    ttft: float | None = None
    tokens: int = 0
    elapsed: float = 0.0
    finish: str | None = None
    retries: int = 0

    @property
    def rate(self) -> float | None:
        if self.ttft is None or self.tokens < 2:
            return None
        span = self.elapsed - self.ttft
        return self.tokens / span if span > 0 else None

    def line(self) -> str:
        parts = [f"first token {self.ttft:.2f}s" if self.ttft is not None else "waiting"]
        parts.append(f"{self.tokens} tokens")
        rate = self.rate
        if rate is not None:
            parts.append(f"{rate:.0f} tok/s")
        parts.append(f"{self.elapsed:.1f}s")
        if self.finish:
            parts.append(f"finish: {self.finish}")
        if self.retries:
            parts.append(f"{self.retries} retries")
        return " · ".join(parts)
