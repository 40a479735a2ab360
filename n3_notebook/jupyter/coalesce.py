"""Coalescing widget updates: text accumulates and is flushed at most every `interval`
seconds (and once more at the end), so a fast stream costs ~20 messages a second, not one
per token, and nothing is dropped."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class Coalescer:
    def __init__(self, flush: Callable[[str], None], interval: float = 0.05) -> None:
        self._flush = flush
        self.interval = interval
        self._parts: list[str] = []
        self.text = ""
        self._last = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self.flushes = 0

    def add(self, piece: str) -> None:
        self._parts.append(piece)
        now = time.monotonic()
        if now - self._last >= self.interval:
            self.flush()
        elif self._timer is None:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(self.interval - (now - self._last), self.flush)

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._parts:
            return
        self.text += "".join(self._parts)
        self._parts.clear()
        self._last = time.monotonic()
        self.flushes += 1
        self._flush(self.text)

    def close(self) -> str:
        self.flush()
        return self.text
