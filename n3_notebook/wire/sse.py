"""Server-Sent Events decoder: bytes in, events out, no I/O.

Follows the WHATWG event-stream rules: lines end at CR, LF or CRLF (also when the CR and
the LF arrive in different chunks); `data` lines of one event are joined with "\\n"; one
space after the colon is dropped; `event`, `id` and `retry` fields; lines starting with a
colon are comments; a leading UTF-8 BOM is skipped; an event is dispatched at a blank line
and only if it has data. Bytes are split before decoding, so a multi-byte character cut
across chunks is safe, and U+2028 inside JSON never splits a line. No limit on event size.

`extra_fields` names non-standard fields to keep: such a line sets the event type to the
field name and adds its value to the data (llama.cpp's server reports errors as `error:`).

At end of stream, flush() still delivers an event whose lines all ended but which lacks the
final blank line (some servers close that way); an unterminated partial line is discarded.
"""

from __future__ import annotations

from dataclasses import dataclass

_BOM = b"\xef\xbb\xbf"


@dataclass(slots=True)
class SSEEvent:
    """One dispatched event. `id` is the stream's last event id at dispatch time."""

    event: str = "message"
    data: str = ""
    id: str | None = None
    retry: int | None = None


class SSEDecoder:
    """Incremental SSE decoder: feed(bytes) -> events; flush() at end of stream."""

    __slots__ = (
        "_data",
        "_event",
        "_extra",
        "_last_id",
        "_pending",
        "_retry",
        "_skip_lf",
        "_started",
    )

    def __init__(self, extra_fields: frozenset[str] = frozenset()) -> None:
        self._extra = extra_fields
        self._pending: list[bytes] = []  # bytes of the current unterminated line
        self._skip_lf = False  # the previous chunk ended with CR: a leading LF is its pair
        self._started = False  # the BOM check is done
        self._data: list[str] = []
        self._event: str | None = None
        self._last_id: str | None = None
        self._retry: int | None = None

    @property
    def last_event_id(self) -> str | None:
        return self._last_id

    def feed(self, data: bytes) -> list[SSEEvent]:
        """Decode the next bytes of the stream; returns the events they complete."""
        if not data:
            return []
        if self._skip_lf:
            self._skip_lf = False
            if data[:1] == b"\n":
                data = data[1:]
                if not data:
                    return []
        if not self._started:
            head = b"".join(self._pending) + data
            if len(head) < len(_BOM) and _BOM.startswith(head):
                self._pending = [head]
                return []
            self._started = True
            self._pending = []
            data = head[3:] if head.startswith(_BOM) else head
        has_cr = b"\r" in data
        if not has_cr and b"\n" not in data:
            self._pending.append(data)
            return []
        if self._pending:
            self._pending.append(data)
            buf = b"".join(self._pending)
            self._pending = []
        else:
            buf = data
        if has_cr:
            if buf[-1:] == b"\r":
                self._skip_lf = True
            buf = buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        lines = buf.split(b"\n")
        tail = lines.pop()
        if tail:
            self._pending.append(tail)
        return self._process(lines)

    def flush(self) -> list[SSEEvent]:
        """End of stream: deliver a last event whose lines ended but had no blank line."""
        self._pending = []
        self._skip_lf = False
        out: list[SSEEvent] = []
        if self._data:
            out.append(self._dispatch())
        self._event = None
        self._retry = None
        return out

    def _process(self, lines: list[bytes]) -> list[SSEEvent]:
        out: list[SSEEvent] = []
        data = self._data
        for raw in lines:
            if not raw:
                if data:
                    out.append(self._dispatch())
                    data = self._data
                else:
                    self._event = None
                continue
            if raw[:6] == b"data: ":
                data.append(raw[6:].decode("utf-8", "replace"))
                continue
            if raw[:1] == b":":
                continue
            colon = raw.find(b":")
            if colon < 0:
                name, value = raw.decode("utf-8", "replace"), ""
            else:
                name = raw[:colon].decode("utf-8", "replace")
                vb = raw[colon + 1 :]
                if vb[:1] == b" ":
                    vb = vb[1:]
                value = vb.decode("utf-8", "replace")
            if name == "data":
                data.append(value)
            elif name == "event":
                self._event = value
            elif name == "id":
                if "\x00" not in value:
                    self._last_id = value
            elif name == "retry":
                if value.isascii() and value.isdigit():
                    self._retry = int(value)
            elif name in self._extra:
                self._event = name
                data.append(value)
        return out

    def _dispatch(self) -> SSEEvent:
        data = self._data
        ev = SSEEvent(
            self._event or "message",
            data[0] if len(data) == 1 else "\n".join(data),
            self._last_id,
            self._retry,
        )
        self._data = []
        self._event = None
        self._retry = None
        return ev
