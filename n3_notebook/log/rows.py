"""One request's record as a row of the `calls` table (runs on the writer thread).

Every text that reaches the row passes through redact(): a key pasted into a prompt or
echoed in an error body is masked before it touches the file. The record's `extra` is
never stored (it may hold anything); queue wait and cache hits are read from the record
when the core provides them (`queue_wait`, `cached`, or the same keys in `extra`)."""

from __future__ import annotations

import datetime as _dt
import math
from typing import Any

import orjson

from ..core.metrics import RequestMetrics
from ..core.pricing import cost
from ..core.redact import redact
from ..core.types import Message, Usage
from .origin import Origin

__all__ = ["to_row"]


def to_row(
    rec: RequestMetrics, origin: Origin | None, store_text: bool, session: str
) -> tuple[Any, ...]:
    """The values of schema.COLUMNS for `rec`, in order."""
    messages = list(rec.messages or ())
    prompt = system = messages_json = response = None
    if store_text:
        prompt = _text(next((m.text for m in reversed(messages) if m.role == "user"), None))
        system = _text(rec.system)
        messages_json = redact(orjson.dumps([_message(m) for m in messages], default=str).decode())
        response = redact(rec.answer)
    usage = Usage.of(rec.input_tokens, rec.output_tokens)
    started = _dt.datetime.fromtimestamp(rec.started_at, _dt.UTC)
    return (
        started.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        rec.started_at,
        rec.provider,
        rec.model,
        int(rec.stream),
        prompt,
        system,
        messages_json,
        response,
        rec.finish_reason,
        rec.outcome,
        rec.error_type,
        _text(rec.error_message),
        rec.status_code,
        rec.input_tokens,
        rec.output_tokens,
        _price(rec, usage),
        rec.time_to_first_token,
        rec.duration,
        _number(_fact(rec, "queue_wait")),
        rec.chunks,
        rec.retries,
        int(bool(_fact(rec, "cached"))),
        _text(rec.request_id),
        _text(origin.notebook) if origin else None,
        _text(origin.cell) if origin else None,
        session,
    )


def _message(m: Message) -> dict[str, Any]:
    """A message as JSON: role and text; images as their type and size (or URL), tool
    calls as name and arguments (never the bytes of an image)."""
    out: dict[str, Any] = {"role": m.role, "content": m.text}
    images = [
        image.url or f"{image.media_type}, {len(image.data or b'')} bytes" for image in m.images
    ]
    if images:
        out["images"] = images
    if m.tool_calls:
        out["tool_calls"] = [{"name": c.name, "arguments": c.arguments} for c in m.tool_calls]
    if m.tool_call_id:
        out["tool_call_id"] = m.tool_call_id
    return out


def _fact(rec: RequestMetrics, name: str) -> Any:
    value = getattr(rec, name, None)
    return rec.extra.get(name) if value is None else value


def _price(rec: RequestMetrics, usage: Usage) -> float | None:
    if not (usage.input_tokens or usage.output_tokens):
        return None
    return cost(rec.provider, rec.model, usage)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _text(value: Any) -> str | None:
    return None if value is None else redact(str(value))
