"""The deterministic answer generator."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from n3_notebook.emulator import expected_answer
from n3_notebook.emulator.text import count_tokens

MSGS = [{"role": "user", "content": "How do I speed up a slow PostgreSQL query?"}]


def test_same_conversation_same_answer():
    a = expected_answer("openai", "gpt-4o-mini", MSGS)
    b = expected_answer("openai", "gpt-4o-mini", [dict(m) for m in MSGS])
    assert a == b
    assert a.tokens is not b.tokens  # callers may mutate their copy


def test_provider_does_not_change_the_text():
    answers = {
        p: expected_answer(p, "demo", MSGS).text
        for p in ("openai", "anthropic", "gemini", "cohere", "ollama")
    }
    assert len(set(answers.values())) == 1


def test_model_and_prompt_change_the_text():
    base = expected_answer("openai", "gpt-4o-mini", MSGS).text
    assert expected_answer("openai", "gpt-4o", MSGS).text != base
    other = [{"role": "user", "content": "What is a B-tree index?"}]
    assert expected_answer("openai", "gpt-4o-mini", other).text != base


def test_model_aliases_and_fault_suffix_are_canonical():
    base = expected_answer("gemini", "gemini-2.0-flash", MSGS).text
    assert expected_answer("gemini", "models/gemini-2.0-flash", MSGS).text == base
    assert expected_answer("gemini", "gemini-2.0-flash~stall:1", MSGS).text == base
    llama = expected_answer("ollama", "llama3", MSGS).text
    assert expected_answer("ollama", "llama3:latest", MSGS).text == llama


def test_system_in_messages_equals_top_level_system():
    inline = [{"role": "system", "content": "Be brief."}, *MSGS]
    a = expected_answer("openai", "demo", inline)
    b = expected_answer("anthropic", "demo", MSGS, system="Be brief.")
    assert a.text == b.text and a.input_tokens == b.input_tokens


def test_whitespace_and_role_aliases_normalise():
    a = expected_answer("gemini", "demo", [{"role": "user", "content": "hello   world\n"}])
    b = expected_answer("cohere", "demo", [{"role": "USER", "content": " hello world"}])
    assert a.text == b.text


def test_answer_reads_like_prose_and_mentions_the_topic():
    answer = expected_answer("openai", "gpt-4o-mini", MSGS)
    assert "PostgreSQL" in answer.text
    assert not answer.text.isascii()
    assert answer.text[0].isupper()
    assert re.search(r"[.!?]$", answer.text)


def test_tokens_and_usage():
    answer = expected_answer("anthropic", "claude-3-5-haiku-latest", MSGS)
    assert "".join(answer.tokens) == answer.text
    assert all(answer.tokens)
    assert answer.output_tokens == len(answer.tokens)
    assert 60 <= answer.output_tokens <= 300
    assert answer.finish_reason == "stop"
    assert answer.input_tokens == count_tokens(MSGS[0]["content"]) == 10


def test_max_tokens_truncates_with_length():
    full = expected_answer("openai", "gpt-4o-mini", MSGS)
    cut = expected_answer("openai", "gpt-4o-mini", MSGS, max_tokens=7)
    assert cut.tokens == full.tokens[:7]
    assert cut.finish_reason == "length" and cut.output_tokens == 7
    same = expected_answer("openai", "gpt-4o-mini", MSGS, max_tokens=full.output_tokens)
    assert same.finish_reason == "stop" and same.text == full.text


def test_stop_sequence_cuts_before_the_match():
    full = expected_answer("anthropic", "demo", MSGS)
    first_period = full.text.index(".")
    answer = expected_answer("anthropic", "demo", MSGS, stop=[".", "zzz-never"])
    assert answer.text == full.text[:first_period]
    assert answer.stop_sequence == "." and answer.finish_reason == "stop"
    assert "".join(answer.tokens) == answer.text
    assert expected_answer("anthropic", "demo", MSGS, stop=["zzz"]).stop_sequence is None


def test_long_answers_have_exactly_n_tokens():
    answer = expected_answer("openai", "gpt-4o-mini", MSGS, length=20_000)
    assert answer.output_tokens == 20_000
    assert "".join(answer.tokens) == answer.text


def test_multibyte_characters_appear_in_tokens():
    answers = [
        expected_answer("openai", "demo", [{"role": "user", "content": f"topic {i}"}])
        for i in range(20)
    ]
    assert all(any(len(t.encode()) != len(t) for t in a.tokens) for a in answers)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.text(min_size=0, max_size=60), min_size=1, max_size=4),
    st.sampled_from(["gpt-4o-mini", "llama3", "demo"]),
)
def test_any_conversation_gives_a_well_formed_answer(texts, model):
    messages = [
        {"role": "user" if i % 2 == 0 else "assistant", "content": t} for i, t in enumerate(texts)
    ]
    answer = expected_answer("openai", model, messages)
    assert "".join(answer.tokens) == answer.text
    assert 60 <= answer.output_tokens <= 300
    assert answer.input_tokens >= 1
    assert expected_answer("ollama", model, messages).text == answer.text
