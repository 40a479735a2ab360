"""SSE decoding throughput: n3_notebook's SSEDecoder against openai-python's own decoder
(and httpx-sse's) on the same bytes of a realistic 20,000-event chat completion stream.

The headline rows cut the stream into 16 KiB pieces, the size of typical network reads of a
fast or buffered stream, and decode only (bytes -> events, no JSON parsing). Each decoder
is driven the way its library drives it: openai's `SSEDecoder().iter_bytes(chunks)`,
httpx-sse's line decoder over incrementally decoded text (what `iter_sse()` does over
`response.iter_text()`), ours via feed()/flush(). The "+ json" rows also json.loads() every
data payload except [DONE]. The "1 read/event" rows feed one event per read, as a live,
paced token stream arrives; there the per-read overhead dominates."""

from __future__ import annotations

import codecs
import functools
import json
import random
from collections.abc import Callable, Iterable
from typing import Any

from n3_notebook.wire import SSEDecoder

from ._util import measure

TITLE = "SSE decode: 20,000-event OpenAI chat stream, 16 KiB reads"

EVENTS = 20_000
QUICK_EVENTS = 2_000
READ_SIZE = 16 * 1024
REPEAT = 9
QUICK_REPEAT = 3
MODEL = "gpt-4o-mini"

_WORDS = (
    " the", " of", " stream", " token", " model", " and", " a", " to", " in", " is", " that",
    " it", " with", " as", " for", " on", " data", " event", ",", ".", "\\n", " \\\"quoted\\\"",
    " naïve", " café", " 東京", " 😀", " résumé", " line\\u2028sep",
)  # fmt: skip


def build_stream(n_events: int = EVENTS, seed: int = 1) -> bytes:
    """The bytes of an OpenAI chat completion stream with exactly n_events events.

    A role chunk, content chunks, a finish_reason chunk, a usage chunk (stream_options
    include_usage: choices == []) and `data: [DONE]`, every event as `data: ...\\n\\n`."""
    if n_events < 5:
        raise ValueError("a stream needs at least 5 events")
    rng = random.Random(seed)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    cid = "chatcmpl-" + "".join(rng.choice(alphabet) for _ in range(29))
    created = 1_741_569_952
    head = (
        f'{{"id":"{cid}","object":"chat.completion.chunk","created":{created},'
        f'"model":"{MODEL}","system_fingerprint":"fp_06737a9306","choices":'
    )
    parts = [
        f'data: {head}[{{"index":0,"delta":{{"role":"assistant","content":"","refusal":null}},'
        f'"logprobs":null,"finish_reason":null}}]}}\n\n'
    ]
    content_events = n_events - 4
    for _ in range(content_events):
        word = rng.choice(_WORDS)
        parts.append(
            f'data: {head}[{{"index":0,"delta":{{"content":"{word}"}},'
            f'"logprobs":null,"finish_reason":null}}]}}\n\n'
        )
    parts.append(
        f'data: {head}[{{"index":0,"delta":{{}},"logprobs":null,"finish_reason":"stop"}}]}}\n\n'
    )
    usage = (
        f'{{"prompt_tokens":12,"completion_tokens":{content_events},'
        f'"total_tokens":{content_events + 12}}}'
    )
    parts.append(f'data: {head}[],"usage":{usage}}}\n\n')
    parts.append("data: [DONE]\n\n")
    return "".join(parts).encode("utf-8")


def split_reads(stream: bytes, size: int = READ_SIZE) -> list[bytes]:
    return [stream[i : i + size] for i in range(0, len(stream), size)]


def split_events(stream: bytes) -> list[bytes]:
    """One read per event (every event of build_stream ends with a blank line)."""
    return [event + b"\n\n" for event in stream.split(b"\n\n")[:-1]]


# --- the decoders, each driven the way its library drives it --------------------------


def ours(chunks: Iterable[bytes]) -> list[Any]:
    decoder = SSEDecoder()
    feed = decoder.feed
    out: list[Any] = []
    for chunk in chunks:
        out += feed(chunk)
    out += decoder.flush()
    return out


def _openai() -> Callable[[Iterable[bytes]], list[Any]] | None:
    try:
        from openai._streaming import SSEDecoder as OpenAISSEDecoder
    except ImportError:  # pragma: no cover - the bench extra installs it
        return None

    def run(chunks: Iterable[bytes]) -> list[Any]:
        # openai.Stream.__stream__: self._decoder.iter_bytes(self.response.iter_bytes())
        return list(OpenAISSEDecoder().iter_bytes(iter(chunks)))

    return run


def _httpx_sse() -> Callable[[Iterable[bytes]], list[Any]] | None:
    try:
        from httpx_sse._decoders import SSEDecoder as HSSEDecoder
        from httpx_sse._decoders import SSELineDecoder
    except ImportError:  # pragma: no cover - the bench extra installs it
        return None

    def run(chunks: Iterable[bytes]) -> list[Any]:
        # EventSource.iter_sse(): SSELineDecoder over response.iter_text(), which decodes
        # UTF-8 incrementally (httpx's TextDecoder is an incremental codec decoder).
        text_decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        lines = SSELineDecoder()
        sse = HSSEDecoder()
        out: list[Any] = []
        for chunk in chunks:
            text = text_decoder.decode(chunk)
            if text:
                for line in lines.decode(text):
                    ev = sse.decode(line)
                    if ev is not None:
                        out.append(ev)
        for line in lines.flush():
            ev = sse.decode(line)
            if ev is not None:
                out.append(ev)
        return out

    return run


def _with_json(decode: Callable[[Iterable[bytes]], list[Any]]) -> Callable[..., list[Any]]:
    loads = json.loads

    def run(chunks: Iterable[bytes]) -> list[Any]:
        return [loads(ev.data) for ev in decode(chunks) if ev.data != "[DONE]"]

    return run


def run(quick: bool = False) -> dict[str, Any]:
    n_events = QUICK_EVENTS if quick else EVENTS
    repeat = QUICK_REPEAT if quick else REPEAT
    stream = build_stream(n_events)
    chunks = split_reads(stream)
    per_event = split_events(stream)
    assert b"".join(per_event) == stream
    variants: list[tuple[str, Callable[[Iterable[bytes]], list[Any]] | None]] = [
        ("n3_notebook", ours),
        ("openai", _openai()),
        ("httpx-sse", _httpx_sse()),
    ]
    available = [(name, fn) for name, fn in variants if fn is not None]

    # Same bytes, same events: every decoder must agree before any of them is timed.
    expected = [ev.data for ev in ours(chunks)]
    if len(expected) != n_events:
        raise AssertionError(f"our decoder found {len(expected)} events, not {n_events}")
    for name, fn in available:
        for reads in (chunks, per_event):
            got = [ev.data for ev in fn(reads)]
            if got != expected:
                raise AssertionError(f"{name} decoded different events from the same bytes")

    rows: list[dict[str, Any]] = []
    rates: dict[str, float] = {}
    scenarios = [
        ("", chunks, False),
        (" + json", chunks, True),
        (" (1 read/event)", per_event, False),
    ]
    base_of: dict[str, str] = {}
    table = []
    for variant, reads, parse in scenarios:
        for decoder, fn in available:
            table.append((decoder + variant, _with_json(fn) if parse else fn, reads))
            base_of[decoder + variant] = "openai" + variant
    for name, fn, reads in table:
        timing = measure(functools.partial(fn, reads), repeat=repeat, warmup=1)
        rate = timing.rate(n_events)
        rates[name] = rate
        rows.append(
            {
                "name": name,
                "events_per_s": round(rate, 1),
                "MB_per_s": round(len(stream) / timing.wall_median / 1e6, 2),
                "median_ms": round(timing.wall_median * 1e3, 3),
                "min_ms": round(timing.wall_min * 1e3, 3),
                "cpu_ms": round(timing.cpu_median * 1e3, 3),
            }
        )
    for row in rows:
        base = base_of[row["name"]]
        row["vs_openai"] = round(rates[row["name"]] / rates[base], 2) if base in rates else None

    summary: dict[str, Any] = {}
    if "openai" in rates:
        summary["ratio_ours_vs_openai"] = round(rates["n3_notebook"] / rates["openai"], 2)
        summary["ratio_ours_vs_openai_with_json"] = round(
            rates["n3_notebook + json"] / rates["openai + json"], 2
        )
        summary["ratio_ours_vs_openai_1_read_per_event"] = round(
            rates["n3_notebook (1 read/event)"] / rates["openai (1 read/event)"], 2
        )
        summary["goal_2x_met"] = summary["ratio_ours_vs_openai"] >= 2.0
    if "httpx-sse" in rates:
        summary["ratio_ours_vs_httpx_sse"] = round(rates["n3_notebook"] / rates["httpx-sse"], 2)
    return {
        "title": TITLE,
        "params": {
            "events": n_events,
            "bytes": len(stream),
            "read_size": READ_SIZE,
            "reads": len(chunks),
            "reads_1_per_event": len(per_event),
            "repeat": repeat,
            "statistic": "median wall time of the repeats (after one warm-up run)",
        },
        "columns": ["name", "events_per_s", "vs_openai", "MB_per_s", "median_ms", "cpu_ms"],
        "rows": rows,
        "summary": summary,
        "notes": [
            "Decoding only in the first rows: bytes -> event objects, data not parsed.",
            "'+ json' rows also json.loads every data payload except [DONE].",
            "One thread, no I/O: the stream is in memory; 16 KiB reads or one read per event.",
        ],
    }
