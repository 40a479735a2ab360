"""Process-wide things an app installs while it runs (the Redis response cache, the Redis
rate store): several apps in one process (tests, embedders) each install theirs, and when
one stops the latest still running is put back, else none."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["Installed"]

T = TypeVar("T")


class Installed(Generic[T]):
    """The items of the running apps, latest last; `use(item or None)` makes one current."""

    def __init__(self, use: Callable[[T | None], object]) -> None:
        self._use = use
        self._items: list[T] = []
        self._lock = threading.Lock()

    def add(self, item: T) -> None:
        with self._lock:
            self._items.append(item)
            self._use(item)

    def remove(self, item: T) -> None:
        with self._lock:
            if item in self._items:
                self._items.remove(item)
            self._use(self._items[-1] if self._items else None)
