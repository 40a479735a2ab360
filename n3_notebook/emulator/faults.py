"""Fault specs: parsing, and the per-emulator "N failures then success" counters.

A request picks at most one fault, with the header ``X-N3-Fault: <spec>`` or a model-name
suffix ``<model>~<spec>`` (the header wins; the suffix is always stripped before the model
lookup).  Grammar: ``name[:arg]``.

=================  ===========================================================
``rate_limit[:N]``  the first N requests (default 1) answer 429 with retry-after: 0
``status_500[:N]``  the first N requests answer 500 (also ``status_503``,
                    ``status_529``; 529 is Anthropic's "overloaded")
``html_error[:N]``  the first N requests answer a 502 HTML page, like a proxy
``invalid_key``     every request answers the provider's "wrong key" 401
``midstream_error[:K]``  after K content chunks (default 3) an in-band error
``stall:S[@K]``     after K content chunks (default 1) nothing for S seconds
``disconnect[:K]``  after K content chunks (default 3) the connection is cut
``malformed[:K]``   after K content chunks (default 3) a data line that is not JSON
``slow_first:S``    the first token arrives after S seconds
``long[:N]``        an answer of exactly N tokens (default 20000)
``blocked``         a blocked prompt (Gemini promptFeedback; content filter elsewhere)
=================  ===========================================================

Counters are keyed by ``(provider, model, spec)`` and cleared by ``Emulator.reset()``.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

__all__ = [
    "FAULT_NAMES",
    "Fault",
    "FaultCounters",
    "FaultSpecError",
    "parse_fault",
    "split_model_fault",
]


class FaultSpecError(ValueError):
    """An unknown or malformed fault spec (the server answers 400)."""


#: Faults answered with an error status before any body, ``times`` times.
STATUS_FAULTS: dict[str, int] = {
    "rate_limit": 429,
    "status_500": 500,
    "status_503": 503,
    "status_529": 529,
    "html_error": 502,
    "invalid_key": 401,
}
#: Faults that act inside a stream, after ``after`` content chunks.
STREAM_FAULTS = frozenset({"midstream_error", "stall", "disconnect", "malformed"})
OTHER_FAULTS = frozenset({"slow_first", "long", "blocked"})
FAULT_NAMES: tuple[str, ...] = (*STATUS_FAULTS, *sorted(STREAM_FAULTS), *sorted(OTHER_FAULTS))

_DEFAULT_AFTER = {"midstream_error": 3, "stall": 1, "disconnect": 3, "malformed": 3}
DEFAULT_LONG = 20_000


@dataclass(frozen=True)
class Fault:
    name: str
    spec: str
    times: int = 1  # status faults: how many requests fail before one succeeds
    after: int = 0  # stream faults: content chunks sent before the fault acts
    seconds: float = 0.0  # stall / slow_first
    length: int = 0  # long

    @property
    def status(self) -> int | None:
        return STATUS_FAULTS.get(self.name)

    @property
    def in_stream(self) -> bool:
        return self.name in STREAM_FAULTS


def _int_arg(spec: str, raw: str, what: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise FaultSpecError(f"fault {spec!r}: {what} must be an integer, got {raw!r}") from None
    if value < 0:
        raise FaultSpecError(f"fault {spec!r}: {what} must not be negative")
    return value


def _seconds_arg(spec: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise FaultSpecError(f"fault {spec!r}: seconds must be a number, got {raw!r}") from None
    if not math.isfinite(value) or value < 0:
        raise FaultSpecError(f"fault {spec!r}: seconds must be a finite number >= 0")
    return value


def parse_fault(spec: str) -> Fault:
    """Parse ``name[:arg]``; raises FaultSpecError with a message meant for the client."""
    spec = spec.strip()
    name, has_arg, arg = spec.partition(":")
    name = name.strip().lower()
    arg = arg.strip()
    if name not in FAULT_NAMES:
        raise FaultSpecError(
            f"unknown fault {spec!r}; expected one of: {', '.join(FAULT_NAMES)} "
            "(grammar: name[:arg], e.g. rate_limit:2, stall:1.5@3)"
        )
    if has_arg and not arg:
        raise FaultSpecError(f"fault {spec!r}: empty argument after ':'")
    if name in STATUS_FAULTS:
        if name == "invalid_key":
            if has_arg:
                raise FaultSpecError(f"fault {spec!r} takes no argument")
            return Fault(name, spec, times=-1)
        return Fault(name, spec, times=_int_arg(spec, arg, "N") if has_arg else 1)
    if name == "stall":
        if not has_arg:
            raise FaultSpecError(f"fault {spec!r}: use stall:SECONDS[@CHUNKS]")
        seconds_raw, has_at, after_raw = arg.partition("@")
        after = _int_arg(spec, after_raw, "K") if has_at else _DEFAULT_AFTER[name]
        return Fault(name, spec, after=after, seconds=_seconds_arg(spec, seconds_raw))
    if name in STREAM_FAULTS:
        after = _int_arg(spec, arg, "K") if has_arg else _DEFAULT_AFTER[name]
        return Fault(name, spec, after=after)
    if name == "slow_first":
        if not has_arg:
            raise FaultSpecError(f"fault {spec!r}: use slow_first:SECONDS")
        return Fault(name, spec, seconds=_seconds_arg(spec, arg))
    if name == "long":
        length = _int_arg(spec, arg, "N") if has_arg else DEFAULT_LONG
        return Fault(name, spec, length=length)
    # blocked
    if has_arg:
        raise FaultSpecError(f"fault {spec!r} takes no argument")
    return Fault(name, spec)


def split_model_fault(model: str) -> tuple[str, str | None]:
    """``"gpt-4o-mini~rate_limit:2"`` -> ``("gpt-4o-mini", "rate_limit:2")``."""
    name, sep, spec = model.partition("~")
    return name, (spec if sep else None)


class FaultCounters:
    """Thread-safe request counts per ``(provider, model, spec)``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, str, str], int] = {}

    def should_fail(self, provider: str, model: str, fault: Fault) -> bool:
        """Count this request; True while fewer than ``fault.times`` have been failed."""
        if fault.times < 0:
            return True
        key = (provider, model, fault.spec)
        with self._lock:
            seen = self._counts.get(key, 0)
            self._counts[key] = seen + 1
        return seen < fault.times

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()
