"""JSON parsing for stream data: orjson when it is installed (several times faster on a
chat chunk: benchmarks/results/design-figures.md), the standard library otherwise. orjson
refuses a few things the standard library accepts (lone surrogate escapes), so a refusal is
retried with json before it counts as malformed; integers beyond 64 bits come back as floats
under orjson (no provider sends such numbers). Both raise ValueError subclasses on bad
input."""

from __future__ import annotations

import json
from typing import Any

try:
    import orjson
except ImportError:  # pragma: no cover - depends on the environment
    orjson = None  # type: ignore[assignment]

BACKEND = "orjson" if orjson is not None else "json"


def _loads_fast(data: str | bytes) -> Any:
    try:
        return orjson.loads(data)
    except ValueError:
        return json.loads(data)


loads = _loads_fast if orjson is not None else json.loads
