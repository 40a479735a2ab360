"""SSEDecoder against the WHATWG event-stream rules.

Every case goes through `decode()`, which feeds the stream whole, one byte at a time, at
every two-way split point (short streams) and at random split points, and checks that all
of them give the same events."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from n3_notebook.wire import SSEDecoder, SSEEvent

E = SSEEvent
BOM = b"\xef\xbb\xbf"


def _run(chunks: list[bytes], extra: frozenset[str], flush: bool) -> list[SSEEvent]:
    decoder = SSEDecoder(extra_fields=extra)
    out: list[SSEEvent] = []
    for chunk in chunks:
        out += decoder.feed(chunk)
    if flush:
        out += decoder.flush()
    return out


def random_splits(data: bytes, rng: random.Random, max_pieces: int = 12) -> list[bytes]:
    if len(data) < 2:
        return [data]
    cuts = sorted(rng.sample(range(1, len(data)), min(len(data) - 1, rng.randint(1, max_pieces))))
    return [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]


def decode(
    data: bytes,
    extra_fields: frozenset[str] = frozenset(),
    *,
    flush: bool = True,
    seeds: int = 20,
) -> list[SSEEvent]:
    """The events of `data`, checked to be the same however the bytes are cut."""
    whole = _run([data], extra_fields, flush)
    bytewise = _run([data[i : i + 1] for i in range(len(data))], extra_fields, flush)
    assert bytewise == whole, "one byte at a time differs from whole"
    if len(data) <= 400:
        for i in range(len(data) + 1):
            halves = _run([data[:i], data[i:]], extra_fields, flush)
            assert halves == whole, f"split at {i} differs from whole"
    for seed in range(seeds):
        rng = random.Random(seed)
        chunks = random_splits(data, rng)
        # empty feeds in between must change nothing either
        chunks = [c for chunk in chunks for c in (chunk, b"")]
        assert _run(chunks, extra_fields, flush) == whole, f"random split (seed {seed}) differs"
    return whole


# --- line endings ----------------------------------------------------------------------


@pytest.mark.parametrize("eol", [b"\n", b"\r", b"\r\n"], ids=["LF", "CR", "CRLF"])
def test_line_endings(eol: bytes) -> None:
    stream = b"event: a" + eol + b"data: 1" + eol + b"data: 2" + eol + eol + b"data: 3" + eol + eol
    assert decode(stream) == [E("a", "1\n2"), E("message", "3")]


def test_mixed_line_endings_in_one_stream() -> None:
    stream = b"data: a\r\ndata: b\rdata: c\n\r\ndata: d\r\rdata: e\n\n"
    assert decode(stream) == [E(data="a\nb\nc"), E(data="d"), E(data="e")]


def test_cr_then_lf_in_the_next_feed_is_one_line_end() -> None:
    d = SSEDecoder()
    assert d.feed(b"data: a\r") == []
    # the LF completes the CRLF begun in the previous feed: no blank line, no dispatch
    assert d.feed(b"\n") == []
    assert d.feed(b"data: b\r") == []
    assert d.feed(b"\ndata: c\n") == []
    assert d.feed(b"\r") == [E(data="a\nb\nc")]
    assert d.feed(b"\n") == []  # pairs with the CR just before: still one blank line
    assert d.feed(b"data: d\n\n") == [E(data="d")]


def test_cr_then_empty_feed_then_lf_is_one_line_end() -> None:
    d = SSEDecoder()
    assert d.feed(b"data: a\r") == []
    assert d.feed(b"") == []
    assert d.feed(b"\n") == []
    assert d.feed(b"\n") == [E(data="a")]


def test_cr_then_cr_is_two_line_ends() -> None:
    d = SSEDecoder()
    assert d.feed(b"data: a\r") == []
    assert d.feed(b"\r") == [E(data="a")]
    assert d.feed(b"\n") == []  # CRLF: the LF belongs to the second CR
    assert d.feed(b"data: b\r") == []
    assert d.feed(b"\rdata: c\r\r") == [E(data="b"), E(data="c")]


def test_cr_at_end_of_chunk_then_lf_then_more_data() -> None:
    assert decode(b"data: a\r\n\r\ndata: b\r\n\r\n") == [E(data="a"), E(data="b")]
    d = SSEDecoder()
    assert d.feed(b"data: a\r\n\r") == [E(data="a")]
    assert d.feed(b"\ndata: b\r\n\r\n") == [E(data="b")]


def test_lf_cr_is_two_line_ends() -> None:
    assert decode(b"data: a\n\rdata: b\n\n") == [E(data="a"), E(data="b")]


@pytest.mark.parametrize(
    "char",
    ["\u2028", "\u2029", "\x85", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\u000b", "\ufeff"],
    ids=["LS", "PS", "NEL", "VT", "FF", "FS", "GS", "RS", "VT2", "ZWNBSP"],
)
def test_unicode_line_breaks_inside_data_do_not_split(char: str) -> None:
    value = f'{{"content": "a{char}b{char}"}}'
    stream = f"data: {value}\n\n".encode()
    assert decode(stream) == [E(data=value)]


def test_line_separator_inside_a_chat_chunk() -> None:
    stream = 'data: {"choices":[{"delta":{"content":"x\u2028y\u2029z"}}]}\r\n\r\n'.encode()
    (ev,) = decode(stream)
    assert ev.data == '{"choices":[{"delta":{"content":"x\u2028y\u2029z"}}]}'


# --- fields ----------------------------------------------------------------------------


def test_multiline_data_joined_with_lf() -> None:
    assert decode(b"data: a\ndata: b\ndata:\ndata: c\n\n") == [E(data="a\nb\n\nc")]


def test_exactly_one_leading_space_removed() -> None:
    assert decode(b"data:  x\n\n") == [E(data=" x")]
    assert decode(b"data:x\n\n") == [E(data="x")]
    assert decode(b"data: \n\n") == [E(data="")]
    assert decode(b"data:\tx\n\n") == [E(data="\tx")]
    assert decode(b"data: x \n\n") == [E(data="x ")]
    assert decode(b"event:  sp\ndata: x\n\n") == [E(" sp", "x")]


def test_field_without_colon() -> None:
    assert decode(b"data\n\n") == [E(data="")]
    assert decode(b"data\ndata\n\n") == [E(data="\n")]
    assert decode(b"event\ndata: x\n\n") == [E("message", "x")]


def test_only_the_first_colon_separates() -> None:
    assert decode(b"data: a:b: c\n\n") == [E(data="a:b: c")]
    assert decode(b'data:{"k": "v"}\n\n') == [E(data='{"k": "v"}')]


def test_field_names_are_exact() -> None:
    stream = b"Data: no\nDATA: no\ndata : no\n data: no\ndatas: no\ndata: yes\n\n"
    assert decode(stream) == [E(data="yes")]


def test_unknown_fields_ignored() -> None:
    assert decode(b"foo: bar\ndata: x\nerror: nope\n\n") == [E(data="x")]


def test_comments_ignored() -> None:
    stream = b": ping\n:\ndata: a\n: in the middle\ndata: b\n\n: keep-alive\n\n"
    assert decode(stream) == [E(data="a\nb")]


def test_comment_only_stream_dispatches_nothing() -> None:
    assert decode(b": hello\n\n: ping\r\n\r\n") == []


def test_event_type() -> None:
    stream = b"event: content_block_delta\ndata: {}\n\ndata: plain\n\n"
    assert decode(stream) == [E("content_block_delta", "{}"), E("message", "plain")]


def test_event_type_last_one_wins_and_empty_means_message() -> None:
    assert decode(b"event: a\nevent: b\ndata: x\n\n") == [E("b", "x")]
    assert decode(b"event: a\nevent:\ndata: x\n\n") == [E("message", "x")]


def test_event_type_is_reset_by_a_blank_line_without_data() -> None:
    assert decode(b"event: lost\n\ndata: x\n\n") == [E("message", "x")]


def test_blank_lines_without_data_dispatch_nothing() -> None:
    assert decode(b"\n\n\r\n\r\r\n") == []
    assert decode(b"id: 7\n\nretry: 9\n\n") == []


def test_id_persists_across_events() -> None:
    stream = b"id: 1\ndata: a\n\ndata: b\n\nid: 2\ndata: c\n\ndata: d\n\n"
    assert [(e.data, e.id) for e in decode(stream)] == [
        ("a", "1"),
        ("b", "1"),
        ("c", "2"),
        ("d", "2"),
    ]


def test_id_set_by_an_event_without_data_still_persists() -> None:
    assert decode(b"id: 5\n\ndata: x\n\n") == [E(data="x", id="5")]


def test_empty_id_resets_last_event_id() -> None:
    assert [e.id for e in decode(b"id: 1\ndata: a\n\nid\ndata: b\n\nid:\ndata: c\n\n")] == [
        "1",
        "",
        "",
    ]


def test_id_with_nul_ignored() -> None:
    stream = b"id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n"
    assert [e.id for e in decode(stream)] == ["1", "1"]


def test_last_event_id_property() -> None:
    d = SSEDecoder()
    assert d.last_event_id is None
    d.feed(b"id: abc\n")
    assert d.last_event_id == "abc"


def test_retry() -> None:
    assert decode(b"retry: 3000\ndata: x\n\n") == [E(data="x", retry=3000)]
    assert decode(b"retry: 3000\ndata: x\n\ndata: y\n\n") == [
        E(data="x", retry=3000),
        E(data="y"),
    ]


@pytest.mark.parametrize(
    "value", [b"abc", b"1.5", b"-1", b"+1", b"1e3", b" 5", b"5 ", b"", b"\xd9\xa3", b"\xef\xbc\x95"]
)
def test_non_digit_retry_ignored(value: bytes) -> None:
    # ("\u0663" and "\uff15" are digits to str.isdigit but not ASCII digits)
    assert decode(b"retry: " + value + b"\ndata: x\n\n") == [E(data="x")]


def test_invalid_retry_keeps_a_valid_earlier_one() -> None:
    assert decode(b"retry: 10\nretry: x\ndata: y\n\n") == [E(data="y", retry=10)]


def test_retry_without_data_comes_with_the_next_event() -> None:
    # no event is dispatched for it; the value is not lost but reported with the next one
    assert decode(b"retry: 5\n\ndata: x\n\n") == [E(data="x", retry=5)]


def test_invalid_utf8_is_replaced() -> None:
    assert decode(b"data: a\xffb\n\n") == [E(data="a\ufffdb")]


# --- BOM -------------------------------------------------------------------------------


def test_leading_bom_ignored() -> None:
    assert decode(BOM + b"data: x\n\n") == [E(data="x")]


def test_bom_split_across_feeds() -> None:
    d = SSEDecoder()
    assert d.feed(b"\xef") == []
    assert d.feed(b"\xbb\xbfdata: x\n\n") == [E(data="x")]
    d = SSEDecoder()
    assert d.feed(b"\xef\xbb") == []
    assert d.feed(b"\xbf") == []
    assert d.feed(b"data: y\n\n") == [E(data="y")]


def test_only_one_leading_bom_removed() -> None:
    # a second BOM belongs to the first line's field name, which is then unknown
    assert decode(BOM + BOM + b"data: x\n\ndata: y\n\n") == [E(data="y")]


def test_bom_not_at_start_is_data() -> None:
    assert decode(b"data: \xef\xbb\xbfx\n\n") == [E(data="\ufeffx")]
    assert decode(b"data: a\n\n" + BOM + b"data: b\n\ndata: c\n\n") == [
        E(data="a"),
        E(data="c"),
    ]


def test_bom_prefix_that_is_not_a_bom() -> None:
    assert decode(b"\xef\xbbdata: x\n\ndata: y\n\n") == [E(data="y")]
    assert decode(b"\n" + BOM + b"data: x\n\ndata: y\n\n") == [E(data="y")]


# --- UTF-8 and size --------------------------------------------------------------------


def test_multibyte_utf8_split_across_chunks() -> None:
    text = "é東京😀\u2028ß"
    stream = f"event: ünï\ndata: {text}\n\n".encode()
    assert decode(stream) == [E("ünï", text)]
    raw = text.encode()
    for i in range(1, len(raw)):
        d = SSEDecoder()
        assert d.feed(b"data: " + raw[:i]) == []
        assert d.feed(raw[i:] + b"\n\n") == [E(data=text)]


def test_event_of_16_mib() -> None:
    piece = "x" * 1021 + "é\u2028"  # 1027 bytes, multi-byte characters cut by the reads
    value = piece * (16 * 1024 * 1024 // len(piece.encode()) + 1)
    for eol in (b"\n", b"\r\n", b"\r"):
        stream = b"data: " + value.encode() + eol + b"data: end" + eol + eol + b"data: next" + eol
        d = SSEDecoder()
        out: list[SSEEvent] = []
        step = 64 * 1024
        for i in range(0, len(stream), step):
            out += d.feed(stream[i : i + step])
        assert len(out) == 1
        assert len(out[0].data) == len(value) + 4
        assert out[0].data == value + "\nend"
        assert d.flush() == [E(data="next")]


def test_event_of_16_mib_in_many_lines() -> None:
    line = b"data: " + b"y" * 1018 + b"\r\n"
    stream = line * (16 * 1024) + b"\r\n"
    d = SSEDecoder()
    out: list[SSEEvent] = []
    for i in range(0, len(stream), 64 * 1024):
        out += d.feed(stream[i : i + 64 * 1024])
    (ev,) = out
    assert len(ev.data) == 16 * 1024 * 1019 - 1


def test_many_small_events() -> None:
    stream = b"".join(b"id: %d\ndata: %d\n\n" % (i, i) for i in range(500))
    out = decode(stream, seeds=3)
    assert [(e.id, e.data) for e in out] == [(str(i), str(i)) for i in range(500)]


# --- flush -----------------------------------------------------------------------------


def test_flush_delivers_an_event_whose_lines_ended_without_blank_line() -> None:
    assert decode(b"data: a\ndata: b\n") == [E(data="a\nb")]
    assert decode(b"event: e\r\nid: 1\r\ndata: x\r\n") == [E("e", "x", "1")]
    assert decode(b"data: a\n", flush=False) == []


def test_flush_discards_an_unterminated_line() -> None:
    assert decode(b"data: a\n\ndata: partial") == [E(data="a")]
    assert decode(b"data: a\ndata: partial") == [E(data="a")]
    assert decode(b"event: x\ndata: partial") == []


def test_flush_with_nothing_pending() -> None:
    d = SSEDecoder()
    assert d.flush() == []
    assert d.feed(b"data: a\n\n") == [E(data="a")]
    assert d.flush() == []


def test_flush_after_a_trailing_cr() -> None:
    assert decode(b"data: a\r") == [E(data="a")]
    assert decode(b"data: a\r\r") == [E(data="a")]


def test_flush_resets_event_state_but_keeps_last_event_id() -> None:
    d = SSEDecoder()
    d.feed(b"id: 9\nevent: e\nretry: 1\n")
    assert d.flush() == []
    assert d.feed(b"data: z\n\n") == [E(data="z", id="9")]


def test_flush_only_a_partial_bom() -> None:
    d = SSEDecoder()
    assert d.feed(b"\xef\xbb") == []
    assert d.flush() == []


# --- extra fields ----------------------------------------------------------------------


def test_extra_field_error_becomes_an_error_event() -> None:
    stream = b'data: {"a":1}\n\nerror: {"message":"boom","code":500}\n\ndata: {"b":2}\n\n'
    assert decode(stream, frozenset({"error"})) == [
        E(data='{"a":1}'),
        E("error", '{"message":"boom","code":500}'),
        E(data='{"b":2}'),
    ]


def test_extra_field_not_named_is_ignored() -> None:
    stream = b'error: {"message":"boom"}\n\ndata: x\n\n'
    assert decode(stream) == [E(data="x")]


def test_extra_field_does_not_override_standard_fields() -> None:
    assert decode(b"data: x\n\n", frozenset({"data"})) == [E(data="x")]


# --- realistic streams -----------------------------------------------------------------


def test_openai_stream_with_done_sentinel() -> None:
    stream = (
        b'data: {"choices":[{"delta":{"content":"Hi"}}]}\n\n'
        b'data: {"choices":[],"usage":{"total_tokens":3}}\n\n'
        b"data: [DONE]\n\n"
    )
    assert [e.data for e in decode(stream)] == [
        '{"choices":[{"delta":{"content":"Hi"}}]}',
        '{"choices":[],"usage":{"total_tokens":3}}',
        "[DONE]",
    ]


def test_anthropic_named_events_with_pings() -> None:
    stream = (
        b"event: message_start\ndata: {}\n\n"
        b'event: ping\ndata: {"type": "ping"}\n\n'
        b'event: content_block_delta\ndata: {"t":"a"}\n\n'
        b'event: error\ndata: {"type":"overloaded_error"}\n\n'
    )
    assert [e.event for e in decode(stream)] == [
        "message_start",
        "ping",
        "content_block_delta",
        "error",
    ]


def test_gemini_crlf_stream_without_sentinel() -> None:
    stream = b'data: {"candidates":[1]}\r\n\r\ndata: {"candidates":[2]}\r\n\r\n'
    assert [e.data for e in decode(stream)] == ['{"candidates":[1]}', '{"candidates":[2]}']


# --- property test ---------------------------------------------------------------------

_NO_EOL = st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",))
_LINE_TEXT = st.text(
    alphabet=st.one_of(_NO_EOL, st.sampled_from("\u2028\u2029\x85\x0b\x0c\ufeff\x00 :")),
    max_size=12,
)
_EVENT = st.fixed_dictionaries(
    {
        "event": st.one_of(st.none(), _LINE_TEXT),
        "id": st.one_of(st.none(), _LINE_TEXT),
        "retry": st.one_of(st.none(), st.integers(min_value=0, max_value=10**12)),
        "data": st.lists(_LINE_TEXT, min_size=1, max_size=4),
        "comment": st.one_of(st.none(), _LINE_TEXT),
    }
)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(events=st.lists(_EVENT, max_size=8), bom=st.booleans(), data=st.data())
def test_property_encoded_and_chunked_events_decode_back(
    events: list[dict], bom: bool, data: st.DataObject
) -> None:
    draw = data.draw
    endings = ["\n", "\r", "\r\n"]
    lines: list[str] = []
    expected: list[SSEEvent] = []
    last_id: str | None = None
    for ev in events:
        others: list[str] = []
        if ev["comment"] is not None:
            others.append(":" + ev["comment"])
        if ev["event"] is not None:
            others.append("event: " + ev["event"])
        if ev["id"] is not None:
            others.append("id: " + ev["id"])
            if "\x00" not in ev["id"]:  # an id containing NUL is ignored
                last_id = ev["id"]
        if ev["retry"] is not None:
            others.append(f"retry:{ev['retry']}")
        fields = []
        for value in ev["data"]:
            compact = not value.startswith(" ") and draw(st.booleans())
            fields.append(("data:" if compact else "data: ") + value)
        rng = draw(st.randoms())
        for other in others:  # anywhere between the data lines, which keep their order
            fields.insert(rng.randint(0, len(fields)), other)
        lines += [*fields, ""]
        expected.append(E(ev["event"] or "message", "\n".join(ev["data"]), last_id, ev["retry"]))
    text = BOM.decode() if bom else ""
    previous = ""
    for line in lines:
        eol = draw(st.sampled_from(endings))
        if previous == "\r" and not line and eol == "\n":
            eol = "\r\n"  # CR + LF would be one line end, not two
        text += line + eol
        previous = eol
    stream = text.encode("utf-8")
    cuts = draw(st.lists(st.integers(0, len(stream)), max_size=10).map(sorted))
    chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    assert _run(chunks, frozenset(), flush=False) == expected
    assert _run([stream], frozenset(), flush=True) == expected
