"""Where a stream is shown: the View protocol, the plain-text views (terminal IPython,
--no-widget) and the factories that pick a widget or a text view for a session.

A view takes these calls from a run: start, append, update_stats, finish, show_final;
widget.WidgetView is the live one."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, Protocol, TextIO

from .coalesce import Coalescer
from .stats import Stats
from .widget import WidgetView

__all__ = ["BufferedTextView", "TextView", "View", "make_view", "widgets_available"]


class View(Protocol):
    """One stream's pane."""

    label: str
    note: str | None
    on_cancel: Callable[[], Any] | None

    def start(self) -> None: ...

    def append(self, piece: str) -> None: ...

    def append_reasoning(self, piece: str) -> None:
        """A piece of the model's thinking (shown apart from the answer)."""
        ...

    def tool_event(self, line: str) -> None:
        """One line about a tool call or its result, shown as it happens."""
        ...

    def update_stats(self, stats: Stats) -> None: ...

    def finish(self, state: str, stats: Stats, error: str | None = None) -> None: ...

    def show_final(self) -> bool:
        """Whether the runner should also publish the final answer as an output."""
        ...


class TextView:
    """Plain text on stdout: terminal IPython and --no-widget."""

    def __init__(
        self,
        label: str,
        note: str | None = None,
        stream: TextIO | None = None,
        interval: float = 0.05,
    ) -> None:
        self.label = label
        self.note = note
        self.out = stream or sys.stdout
        self.on_cancel: Callable[[], Any] | None = None
        self._written = 0
        # one write (one kernel stdout message) per interval, not one per token
        self._coalescer = Coalescer(self._write, interval)

    @property
    def text(self) -> str:
        return self._coalescer.text

    def heading(self) -> str:
        return f"── {self.label}" + (f" ({self.note})" if self.note else "") + " ──"

    def _write(self, text: str) -> None:
        self.out.write(text[self._written :])
        self.out.flush()
        self._written = len(text)

    def start(self) -> None:
        print(self.heading(), file=self.out, flush=True)

    def append(self, piece: str) -> None:
        self._coalescer.add(piece)

    def append_reasoning(self, piece: str) -> None:
        pass  # plain text shows the answer only; the result keeps the thinking

    def tool_event(self, line: str) -> None:
        self._coalescer.add(f"{line}\n")

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
        return False


class BufferedTextView(TextView):
    """Plain text for concurrent streams: each answer is printed whole when it ends."""

    def __init__(self, label: str, note: str | None = None, stream: TextIO | None = None) -> None:
        super().__init__(label, note, stream)
        self._parts: list[str] = []

    @property
    def text(self) -> str:
        return "".join(self._parts)

    def start(self) -> None:
        self._parts = []

    def append(self, piece: str) -> None:
        self._parts.append(piece)

    def tool_event(self, line: str) -> None:
        self._parts.append(f"{line}\n")

    def finish(self, state: str, stats: Stats, error: str | None = None) -> None:
        print(self.heading(), file=self.out)
        if self.text:
            print(self.text, file=self.out)
        if error:
            print(f"[{state}] {error}", file=self.out)
        print(f"[{state}] {stats.line()}", file=self.out, flush=True)


def widgets_available(shell: Any) -> bool:
    """True in a kernel (widgets reach a frontend), not in terminal IPython."""
    return shell is not None and getattr(shell, "kernel", None) is not None


def make_view(
    widgets: bool,
    label: str,
    note: str | None,
    interval: float,
    show: Callable[[Any], Any] | None = None,
) -> View:
    """A widget view or a text view. A stream shown alone (`show` given) gets a live text
    view or a widget shown at once; one that shares the output with others (a comparison,
    a chain) gets a buffered text view or a widget its caller lays out."""
    if widgets:
        view = WidgetView(label, note, interval=interval)
        if show is not None:
            shown = show(view.box)  # NotebookSession.show_live gives the display id
            view.display_id = shown if isinstance(shown, str) else None
        return view
    if show is not None:
        return TextView(label, note, interval=interval)
    return BufferedTextView(label, note)
