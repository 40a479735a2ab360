"""NDJSONDecoder: LF framing on bytes, whatever the chunking."""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from n3_notebook.wire import NDJSONDecoder


def _run(chunks: list[bytes], flush: bool = True) -> list[bytes]:
    decoder = NDJSONDecoder()
    out: list[bytes] = []
    for chunk in chunks:
        out += decoder.feed(chunk)
    if flush:
        out += decoder.flush()
    return out


def decode(data: bytes, *, flush: bool = True, seeds: int = 20) -> list[bytes]:
    """The records of `data`, checked to be the same however the bytes are cut."""
    whole = _run([data], flush)
    assert _run([data[i : i + 1] for i in range(len(data))], flush) == whole
    for i in range(len(data) + 1):  # every byte boundary
        assert _run([data[:i], data[i:]], flush) == whole, f"split at {i}"
    for seed in range(seeds):
        rng = random.Random(seed)
        n = rng.randint(1, min(12, len(data) + 1))
        cuts = sorted(rng.choices(range(len(data) + 1), k=n))
        chunks = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
        assert _run(chunks, flush) == whole, f"random split (seed {seed})"
    return whole


def test_lf_framing() -> None:
    assert decode(b'{"a":1}\n{"b":2}\n') == [b'{"a":1}', b'{"b":2}']


def test_crlf_trailing_cr_stripped() -> None:
    assert decode(b'{"a":1}\r\n{"b":2}\r\n') == [b'{"a":1}', b'{"b":2}']


def test_only_one_trailing_cr_stripped_and_cr_alone_does_not_split() -> None:
    assert decode(b'{"a":"x\ry"}\n') == [b'{"a":"x\ry"}']
    assert decode(b"{}\r\r\n") == [b"{}\r"]


def test_blank_lines_skipped() -> None:
    assert decode(b'\n\n{"a":1}\n\r\n   \n\t\r\n{"b":2}\n\n') == [b'{"a":1}', b'{"b":2}']


def test_last_record_without_newline_comes_from_flush() -> None:
    d = NDJSONDecoder()
    assert d.feed(b'{"a":1}\n{"done":') == [b'{"a":1}']
    assert d.feed(b"true}") == []
    assert d.flush() == [b'{"done":true}']
    assert d.flush() == []
    assert decode(b'{"a":1}\n{"b":2}') == [b'{"a":1}', b'{"b":2}']
    assert decode(b'{"a":1}\n{"b":2}\r') == [b'{"a":1}', b'{"b":2}']
    assert decode(b'{"a":1}\n{"b":2}', flush=False) == [b'{"a":1}']


def test_flush_of_blank_rest_gives_nothing() -> None:
    assert decode(b'{"a":1}\n  \r') == [b'{"a":1}']
    assert NDJSONDecoder().flush() == []


def test_decoder_is_reusable_after_flush() -> None:
    d = NDJSONDecoder()
    d.feed(b"{")
    assert d.flush() == [b"{"]
    assert d.feed(b"[]\n") == [b"[]"]


@pytest.mark.parametrize("char", ["\u2028", "\u2029", "\x85", "\x0b", "\x0c", "\x1c", "\r"])
def test_unicode_line_breaks_stay_inside_the_record(char: str) -> None:
    record = json.dumps({"content": f"a{char}b", "done": False}, ensure_ascii=False)
    stream = (record + "\n").encode()
    (got,) = decode(stream)
    assert json.loads(got) == {"content": f"a{char}b", "done": False}


def test_multibyte_utf8_split_across_chunks() -> None:
    record = json.dumps({"t": "é東京😀"}, ensure_ascii=False).encode()
    assert decode(record + b"\n" + record) == [record, record]


def test_records_are_bytes_not_parsed() -> None:
    (rec,) = decode(b"not json at all\n")
    assert rec == b"not json at all"
    assert isinstance(rec, bytes)


def test_ollama_like_stream() -> None:
    lines = [
        {"model": "llama3.2", "message": {"role": "assistant", "content": "Hi"}, "done": False},
        {
            "model": "llama3.2",
            "message": {"role": "assistant", "content": "\u2028!"},
            "done": False,
        },
        {"model": "llama3.2", "done": True, "eval_count": 2, "total_duration": 123456789},
    ]
    stream = "".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines).encode()
    assert [json.loads(r) for r in decode(stream)] == lines


def test_large_record() -> None:
    record = json.dumps({"content": "y" * (8 * 1024 * 1024)}).encode()
    stream = record + b"\n" + record
    d = NDJSONDecoder()
    out: list[bytes] = []
    for i in range(0, len(stream), 64 * 1024):
        out += d.feed(stream[i : i + 64 * 1024])
    out += d.flush()
    assert out == [record, record]


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=150, deadline=None)
@given(
    values=st.lists(_JSON, max_size=8),
    ascii_only=st.booleans(),
    final_newline=st.booleans(),
    data=st.data(),
)
def test_property_records_survive_any_chunking(
    values: list, ascii_only: bool, final_newline: bool, data: st.DataObject
) -> None:
    records = [json.dumps(v, ensure_ascii=ascii_only).encode() for v in values]
    stream = b""
    for i, rec in enumerate(records):
        stream += data.draw(st.sampled_from([b"", b"\n", b"\r\n", b" \n"]))  # blank lines
        stream += rec
        if i < len(records) - 1 or final_newline:
            stream += data.draw(st.sampled_from([b"\n", b"\r\n"]))
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=10).map(sorted))
    chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    got = _run(chunks)
    assert got == records
    assert [json.loads(r) for r in got] == values
