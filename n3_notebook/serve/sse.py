"""Server-Sent Events as the service writes them: one event per `id:`/`event:`/`data:`
group, the data a single line of JSON.

Every event has an increasing integer `id` (1, 2, ...) within its stream. JSON never holds a
raw CR or LF, and U+2028/U+2029 are written escaped, so a client that splits lines on them
(Python's str.splitlines, some JavaScript parsers) still sees one line per field."""

from __future__ import annotations

import json
from typing import Any

import orjson

_LS = "\u2028".encode()
_PS = "\u2029".encode()
HEARTBEAT = b": keep-alive\n\n"


def _default(obj: Any) -> Any:
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    if isinstance(obj, (bytes, bytearray)):
        return bytes(obj).decode("utf-8", "replace")
    return str(obj)


def dumps(obj: Any) -> bytes:
    """Compact JSON bytes; values JSON has no type for (sets, bytes, ...) become lists or text.
    What orjson refuses (integers beyond 64 bits, lone surrogates, both valid JSON a
    client may send) goes through the standard library, escaped to ASCII."""
    try:
        data = orjson.dumps(obj, default=_default, option=orjson.OPT_NON_STR_KEYS)
    except orjson.JSONEncodeError:
        text = json.dumps(obj, default=_default, separators=(",", ":"), ensure_ascii=True)
        return text.encode("ascii")
    if _LS in data or _PS in data:
        data = data.replace(_LS, b"\\u2028").replace(_PS, b"\\u2029")
    return data


def encode_event(event_id: int, event: str, data: Any) -> bytes:
    """`id: N\\nevent: NAME\\ndata: JSON\\n\\n`."""
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (event_id, event.encode(), dumps(data))
