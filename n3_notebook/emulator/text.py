"""Deterministic answer generator shared by the emulator server and the tests.

How a conversation maps to an answer
------------------------------------
1. Each provider's request shape is first reduced (by ``formats/*``) to plain
   ``{"role", "content"}`` messages plus an optional system text.  Roles are normalised
   (``model``/``chatbot`` -> ``assistant``, ``developer`` -> ``system``, case folded) and any
   system messages inside the list are folded into the system text.
2. The *conversation key* is ``"system:<text>"`` followed by one ``"<role>:<content>"`` line
   per message, every content with its whitespace collapsed to single spaces.
3. The seed is ``sha256(canonical_model + "\\n" + conversation key)``.  The canonical model
   drops a fault suffix (``~spec``), Gemini's ``models/`` prefix and Ollama's ``:latest``.
   The provider plays no part, so the same conversation sent to the same model through
   any route gets the same answer.
4. A ``random.Random(seed)`` picks an opener, body sentences and a closer from a bank of
   templates, filling the slots with key words taken from the last user message.  The
   target length is 60..300 tokens; at least one sentence always carries a non-ASCII
   character (an em dash, an accented word or an arrow) so multibyte UTF-8 is exercised.
5. The text is cut into word-ish *tokens*: a word with its leading whitespace, a single
   punctuation mark, and now and then a long word split into two sub-word pieces.  One
   token is one streamed chunk; ``"".join(tokens) == text`` always holds.
6. Stop sequences cut the text before the first match (finish ``"stop"``), and
   ``max_tokens`` keeps only the first N tokens (finish ``"length"``).

``input_tokens`` is the number of words and punctuation marks in the system text and all
message contents; ``output_tokens`` is ``len(tokens)``.
"""

from __future__ import annotations

import functools
import hashlib
import random
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Answer",
    "canonical_model",
    "conversation_key",
    "count_tokens",
    "expected_answer",
    "normalize_messages",
    "tokenize",
]

MIN_TOKENS = 60
MAX_TOKENS = 300

_ROLE_ALIASES = {
    "user": "user",
    "human": "user",
    "assistant": "assistant",
    "model": "assistant",
    "chatbot": "assistant",
    "ai": "assistant",
    "system": "system",
    "developer": "system",
    "tool": "tool",
    "function": "tool",
}

_PIECE_RE = re.compile(r"\s*(?:\w+|[^\w\s])")
_COUNT_RE = re.compile(r"\w+|[^\w\s]")
_WORD_RE = re.compile(r"[^\W\d_][\w'’-]*")

_STOPWORDS = frozenset(
    """
    a about above after again against all also am an and any are as at be because been
    before being below between both but by can could did do does doing done down during
    each few for from further give had has have having he her here hers herself him
    himself his how i if in into is it its itself just know let like make me more most
    my myself need no nor not now of off on once only or other our ours ourselves out
    over own please same say she should show so some such tell than that the their
    theirs them themselves then there these they thing things this those through to too
    under until up use using very want was way we well were what when where which while
    who whom why will with would write you your yours yourself yourselves explain
    describe briefly short sentence sentences word words answer question questions reply
    hello thanks thank could would should might must shall work works one two three four
    five first second third paragraph paragraphs example examples something anything
    really maybe okay sure many much every
    """.split()  # noqa: SIM905
)

_FALLBACK_WORDS = ("the question", "the details", "the context", "the trade-offs")

_OPENERS = (
    "Good question — here is a short overview of {k1}.",
    "Here is how I would think about {k1}.",
    "Let's break {k1} down into a few parts.",
    "In short, {k1} comes down to a handful of ideas.",
    "Sure. {K1} is easier to reason about once you look at {k2}.",
    "There are a few ways to approach {k1}, and they overlap more than it seems.",
    "Happy to help with {k1}; the short version is below.",
)

_BODIES = (
    "The key point is that {k1} and {k2} depend on each other, so changing one usually "
    "affects the other.",
    "A common mistake is to treat {k2} as an afterthought; in practice it shapes how {k1} behaves.",
    "If you look at {k3} first, the rest of {k1} tends to fall into place.",
    "Most explanations start with {k1}, then move on to {k2} and finally {k3}.",
    "One useful rule of thumb: keep {k1} simple, and only add detail to {k2} when you need it.",
    "It also helps to write down what you expect from {k2} before you measure it.",
    "For example, a small change in {k1} can have a surprisingly large effect on {k3}.",
    "There is no single right answer here — it depends on your constraints and on how much "
    "time you have.",
    "Think of {k2} as the façade and {k1} as the machinery behind it.",
    "The naïve approach works for small cases, but {k3} becomes the bottleneck as things grow.",
    "In my experience, the trade-off between {k1} and {k3} is where most of the "
    "interesting decisions are made.",
    "Start with a concrete example, check the result, and only then generalise to {k1} as a whole.",
    "A quick sanity check: if {k2} doubles, does {k3} double too, or does it change in "
    "some other way?",
    "Historically, {k1} came first and {k2} was added later, which explains some of the "
    "odd corners.",
    "It is worth measuring before optimising, because intuition about {k3} is often wrong.",
    "You can picture it as a pipeline: {k1} → {k2} → {k3}.",
    "The documentation for {k2} is usually the best place to confirm the exact behaviour.",
    "That said, {k1} is not magic; it is a tool with clear limits.",
    "People sometimes call {k2} a cliché, yet the details still matter in real projects.",
    "When {k1} misbehaves, the cause is more often {k2} than {k1} itself.",
    "A good mental model is to separate what {k1} promises from how {k3} delivers it.",
    "Keep in mind that {k3} can vary between versions, so pin what you rely on.",
    "Roughly speaking, 80% of the benefit comes from getting {k1} right.",
    "If you are short on time, focus on {k2}; the rest can wait until later.",
)

_LISTS = (
    "\n\n- **{K1}**: the starting point.\n- **{K2}**: where most of the work happens.\n"
    "- **{K3}**: what you check at the end.",
    "\n\n1. Define {k1} precisely.\n2. Measure {k2}.\n3. Adjust {k3} and repeat.",
)

_CLOSERS = (
    "I hope this gives you a useful starting point for {k1}.",
    "If you share more about your use case, I can go into more detail on {k2}.",
    "In summary: understand {k1}, respect {k2}, and keep an eye on {k3}.",
    "Let me know if you want a worked example — a step-by-step version is often clearer.",
    "Happy experimenting with {k1}! 🚀",
)

_NON_ASCII_BODIES = tuple(i for i, s in enumerate(_BODIES) if not s.isascii())


@dataclass(frozen=True)
class Answer:
    """What the emulator streams for one request."""

    tokens: list[str]
    text: str
    input_tokens: int
    output_tokens: int
    finish_reason: str  # "stop", "length" or "tool_calls" (normalised words)
    stop_sequence: str | None = None
    seed: str = field(default="", repr=False)
    #: Thinking tokens streamed before the answer (reasoning requests), see features.py.
    thinking: tuple[str, ...] = ()
    #: Tool calls the answer makes instead of text (tool requests), see features.py.
    tool_calls: tuple[Any, ...] = ()


def canonical_model(model: str) -> str:
    """The model name the seed uses: no fault suffix, no ``models/``, no ``:latest``."""
    name = model.split("~", 1)[0].strip()
    if name.startswith("models/"):
        name = name[len("models/") :]
    if name.endswith(":latest"):
        name = name[: -len(":latest")]
    return name


def _content_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, Mapping):
        for key in ("text", "content", "message"):
            value = content.get(key)
            if isinstance(value, str):
                return value
        return ""
    if isinstance(content, Iterable):
        return "\n".join(t for t in (_content_text(part) for part in content) if t)
    return str(content)


def normalize_messages(
    messages: Sequence[Mapping[str, Any]], system: str | None = None
) -> tuple[tuple[tuple[str, str], ...], str]:
    """Return ``((role, content), ...)`` without system turns, and the merged system text."""
    systems: list[str] = [system] if system else []
    turns: list[tuple[str, str]] = []
    for message in messages:
        role_raw = str(message.get("role") or "user").strip().lower()
        role = _ROLE_ALIASES.get(role_raw, role_raw)
        content = " ".join(_content_text(message.get("content")).split())
        if role == "system":
            if content:
                systems.append(content)
            continue
        turns.append((role, content))
    merged_system = " ".join(" ".join(systems).split())
    return tuple(turns), merged_system


def conversation_key(turns: Sequence[tuple[str, str]], system: str) -> str:
    lines = [f"system:{system}"]
    lines.extend(f"{role}:{content}" for role, content in turns)
    return "\n".join(lines)


def count_tokens(text: str) -> int:
    """Word + punctuation count: the emulator's notion of an input token."""
    return len(_COUNT_RE.findall(text))


def tokenize(text: str, rng: random.Random | None = None) -> list[str]:
    """Split text into word-ish pieces; with ``rng``, some long words become two pieces."""
    pieces: list[str] = []
    for match in _PIECE_RE.finditer(text):
        piece = match.group(0)
        word = piece.lstrip()
        if rng is not None and len(word) >= 8 and word.isalpha() and rng.random() < 0.35:
            cut = len(piece) - len(word) + rng.randint(3, len(word) - 3)
            pieces.extend((piece[:cut], piece[cut:]))
        else:
            pieces.append(piece)
    return pieces


def _keywords(turns: Sequence[tuple[str, str]], system: str) -> list[str]:
    """Key phrases (runs of up to three content words) from the last user message."""
    source = ""
    for role, content in reversed(turns):
        if role == "user" and content:
            source = content
            break
    found: list[str] = []
    seen: set[str] = set()
    for text in (source, system):
        run: list[str] = []
        words = _WORD_RE.findall(text) + [""]
        for index, raw in enumerate(words):
            word = raw.strip("'’-")
            low = word.lower()
            is_acronym = word.isupper() and len(word) > 1
            if word and low not in _STOPWORDS and (len(low) >= 4 or is_acronym):
                keep_case = is_acronym or (index > 0 and word[:1].isupper())
                run.append(word if keep_case else low)
                if len(run) < 3:
                    continue
            if run:
                phrase = " ".join(run)
                if phrase.lower() not in seen:
                    seen.add(phrase.lower())
                    found.append(phrase)
                run = []
            if len(found) >= 5:
                return found
    return found


def _fill(template: str, words: Sequence[str]) -> str:
    k1, k2, k3 = words[0], words[1], words[2]
    return template.format(
        k1=k1,
        k2=k2,
        k3=k3,
        K1=k1[:1].upper() + k1[1:],
        K2=k2[:1].upper() + k2[1:],
        K3=k3[:1].upper() + k3[1:],
    )


def _compose(rng: random.Random, words: list[str], target: int | None) -> list[str]:
    """Return the answer's tokens: exactly ``target`` tokens if given, else 60..300."""
    pool = list(words)
    for fallback in _FALLBACK_WORDS:
        if len(pool) >= 3:
            break
        pool.append(fallback)
    slots = rng.sample(pool, 3) if len(pool) > 3 else pool[:3]
    if rng.random() < 0.6:  # keep the main subject first most of the time
        slots = [pool[0], *[w for w in slots if w != pool[0]][:2]]

    def tokens_of(sentence: str) -> list[str]:
        return tokenize(sentence, rng)

    out = tokens_of(_fill(rng.choice(_OPENERS), slots))
    closer = tokens_of(" " + _fill(rng.choice(_CLOSERS), slots))
    goal = target if target is not None else rng.randint(MIN_TOKENS, MAX_TOKENS - 40)
    forced = rng.choice(_NON_ASCII_BODIES)
    order = [forced] + [i for i in rng.sample(range(len(_BODIES)), len(_BODIES)) if i != forced]
    list_at = rng.randint(2, 5) if rng.random() < 0.4 else -1
    in_paragraph = 0
    step = 0
    while len(out) + (0 if target is not None else len(closer)) < goal:
        if step and step % len(order) == 0:
            order = rng.sample(range(len(_BODIES)), len(_BODIES))
        if step == list_at:
            out.extend(tokens_of(_fill(rng.choice(_LISTS), slots)))
            in_paragraph = 3
        sep = " "
        if in_paragraph >= rng.randint(2, 4):
            sep, in_paragraph = "\n\n", 0
        out.extend(tokens_of(sep + _fill(_BODIES[order[step % len(order)]], slots)))
        in_paragraph += 1
        step += 1
    if target is not None:
        return out[:target]
    out.extend(closer)
    return out


@functools.lru_cache(maxsize=512)
def _generate(
    model: str,
    turns: tuple[tuple[str, str], ...],
    system: str,
    length: int | None,
) -> tuple[tuple[str, ...], str]:
    key = conversation_key(turns, system)
    seed = hashlib.sha256(f"{model}\n{key}".encode()).hexdigest()
    rng = random.Random(int(seed[:32], 16))
    tokens = _compose(rng, _keywords(turns, system), length)
    return tuple(tokens), seed


def expected_answer(
    provider: str,
    model: str,
    messages: Sequence[Mapping[str, Any]],
    system: str | None = None,
    max_tokens: int | None = None,
    *,
    stop: Sequence[str] | str | None = None,
    length: int | None = None,
) -> Answer:
    """The exact answer the emulator gives for this conversation.

    ``provider`` is accepted for symmetry with the server and does not change the text.
    ``stop`` holds stop sequences; ``length`` forces an exact token count (the ``long``
    fault).
    """
    del provider  # the text deliberately does not depend on the route
    turns, merged_system = normalize_messages(messages, system)
    full, seed = _generate(canonical_model(model), turns, merged_system, length)
    tokens = list(full)
    finish, hit = "stop", None
    if isinstance(stop, str):
        stop = [stop]
    stops = [s for s in (stop or []) if s]
    if stops:
        text = "".join(tokens)
        best = -1
        for candidate in stops:
            pos = text.find(candidate)
            if pos != -1 and (best == -1 or pos < best):
                best, hit = pos, candidate
        if hit is not None:
            tokens = _cut_at(tokens, best)
    if max_tokens is not None and 0 <= max_tokens < len(tokens):
        tokens = tokens[:max_tokens]
        finish, hit = "length", None
    input_count = count_tokens(merged_system) + sum(count_tokens(c) for _, c in turns)
    return Answer(
        tokens=tokens,
        text="".join(tokens),
        input_tokens=max(1, input_count),
        output_tokens=len(tokens),
        finish_reason=finish,
        stop_sequence=hit,
        seed=seed,
    )


def _cut_at(tokens: list[str], position: int) -> list[str]:
    out: list[str] = []
    used = 0
    for token in tokens:
        if used + len(token) <= position:
            out.append(token)
            used += len(token)
            continue
        if position > used:
            out.append(token[: position - used])
        break
    return out
