"""Newline-delimited JSON framing: bytes in, one undecoded record per line out, no I/O.

Records end at LF (a CR before it is dropped); blank lines are skipped; the last record
without a newline comes out of flush(). Splitting bytes (not str) keeps U+2028 inside
JSON strings from ever splitting a record."""

from __future__ import annotations


class NDJSONDecoder:
    """Incremental NDJSON framer: feed(bytes) -> records (bytes); flush() at the end."""

    __slots__ = ("_pending",)

    def __init__(self) -> None:
        self._pending: list[bytes] = []

    def feed(self, data: bytes) -> list[bytes]:
        if not data:
            return []
        if b"\n" not in data:
            self._pending.append(data)
            return []
        if self._pending:
            self._pending.append(data)
            data = b"".join(self._pending)
            self._pending = []
        lines = data.split(b"\n")
        tail = lines.pop()
        if tail:
            self._pending.append(tail)
        return [r for r in map(_clean, lines) if r]

    def flush(self) -> list[bytes]:
        rest = _clean(b"".join(self._pending))
        self._pending = []
        return [rest] if rest else []


def _clean(line: bytes) -> bytes:
    if line[-1:] == b"\r":
        line = line[:-1]
    return line if line.strip() else b""
