"""Plain-text stream view (terminal IPython, --no-widget) and widget detection.

A view takes these calls from the runner: start, append, update_stats, finish, show_final;
widget.WidgetView is the live one."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from .coalesce import Coalescer
from .stats import Stats


class TextView:
    """Plain text on stdout: terminal IPython and --no-widget."""

    def __init__(
        self, label: str, note: str | None = None, stream: Any = None, interval: float = 0.05
    ) -> None:
        self.label = label
        self.note = note
        self.out = stream or sys.stdout
        self.on_cancel: Callable[[], None] | None = None
        self._written = 0
        # one write (one kernel stdout message) per interval, not one per token
        self._coalescer = Coalescer(self._write, interval)

    @property
    def text(self) -> str:
        return self._coalescer.text

    def _write(self, text: str) -> None:
        self.out.write(text[self._written :])
        self.out.flush()
        self._written = len(text)

    def start(self) -> None:
        head = f"── {self.label}" + (f" ({self.note})" if self.note else "") + " ──"
        print(head, file=self.out, flush=True)

    def append(self, piece: str) -> None:
        self._coalescer.add(piece)

    def update_stats(self, stats: Stats) -> None:
        pass

    def finish(self, state: str, stats: Stats, error: str | None = None) -> None:
        self._coalescer.close()
        if self.text and not self.text.endswith("\n"):
            self.out.write("\n")
        if error:
            self.out.write(f"[{state}] {error}\n")
        self.out.write(f"[{state}] {stats.line()}\n")
        self.out.flush()

    def show_final(self) -> bool:
        """Whether the runner should also publish the final answer as an output."""
        return False


def widgets_available(shell: Any) -> bool:
    """True in a kernel with ipywidgets importable (not in terminal IPython)."""
    if shell is None or getattr(shell, "kernel", None) is None:
        return False
    try:
        import ipywidgets  # noqa: F401
    except ImportError:
        return False
    return True


class BufferedTextView(TextView):
    """Plain text for concurrent streams: each answer is printed whole when it ends."""

    def __init__(self, label: str, note: str | None = None, stream: Any = None) -> None:
        super().__init__(label, note, stream)
        self._parts: list[str] = []

    @property
    def text(self) -> str:
        return "".join(self._parts)

    def start(self) -> None:
        self._parts = []

    def append(self, piece: str) -> None:
        self._parts.append(piece)

    def finish(self, state: str, stats: Stats, error: str | None = None) -> None:
        head = f"── {self.label}" + (f" ({self.note})" if self.note else "") + " ──"
        print(head, file=self.out)
        if self.text:
            print(self.text, file=self.out)
        if error:
            print(f"[{state}] {error}", file=self.out)
        print(f"[{state}] {stats.line()}", file=self.out, flush=True)
