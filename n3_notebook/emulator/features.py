"""What tools, schemas, images and reasoning change in the emulator's answer.

All of it is deterministic (seeded like the text, from the conversation):

* A request that offers tools, whose last turn is not a tool result, is answered with one
  call: the tool named in the last user message (else the first tool), with arguments
  made from its parameter schema; the arguments' JSON is cut into several pieces so every
  streaming format spreads them over several deltas.  Once a tool result comes back, the
  answer is text again (the usual text, seeded by the conversation including the result).
* A request with a JSON schema is answered with a JSON instance of that schema.
* Images are acknowledged in the answer's first sentence ("I see 1 image (image/png)").
* A request asking for reasoning gets thinking tokens, streamed before the answer.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass, replace
from typing import Any

from .formats.base import ChatRequest
from .text import Answer, normalize_messages, tokenize

__all__ = ["EmuToolCall", "apply_features", "schema_instance"]

_ARG_PIECES = 3


@dataclass(frozen=True)
class EmuToolCall:
    """One call the emulator makes; `pieces` joined is the arguments' JSON text."""

    key: str  # a stable hex id; each format adds its provider's prefix
    name: str
    arguments: dict[str, Any]
    pieces: tuple[str, ...]

    @property
    def arguments_json(self) -> str:
        return "".join(self.pieces)


def apply_features(answer: Answer, chat: ChatRequest) -> Answer:
    """The answer for a request with tools, schema, images or reasoning."""
    turns, _ = normalize_messages(chat.messages, chat.system)
    after_tool = bool(turns) and turns[-1][0] == "tool"
    if not (chat.tools or chat.schema is not None or chat.images or chat.reasoning or after_tool):
        return answer
    rng = random.Random(int((answer.seed or "0")[:32] or "0", 16))
    last_user = next((c for r, c in reversed(turns) if r == "user"), "")
    topic = _topic(last_user)
    out = answer
    if chat.tools and not after_tool:
        call = _tool_call(chat.tools, last_user, answer.seed, rng)
        out = replace(
            out,
            tokens=[],
            text="",
            output_tokens=len(call.pieces) + 1,
            finish_reason="tool_calls",
            stop_sequence=None,
            tool_calls=(call,),
        )
    elif chat.schema is not None:
        text = json.dumps(schema_instance(chat.schema, topic, rng), ensure_ascii=False)
        tokens = [text[i : i + 8] for i in range(0, len(text), 8)]
        out = replace(
            out,
            tokens=tokens,
            text=text,
            output_tokens=len(tokens),
            finish_reason="stop",
            stop_sequence=None,
        )
    ack = ""
    if after_tool and chat.schema is None:
        ack = f"The tool returned: {turns[-1][1]} "
    if chat.images and not out.tool_calls and chat.schema is None:
        kinds = ", ".join(sorted({media for media, _ in chat.images}))
        count = len(chat.images)
        ack += f"I see {count} image{'s' if count != 1 else ''} ({kinds}). "
    if ack:
        rest = list(out.tokens)
        if rest and not rest[0][:1].isspace():
            rest[0] = " " + rest[0]
        tokens = tokenize(ack.rstrip()) + rest
        out = replace(out, tokens=tokens, text="".join(tokens), output_tokens=len(tokens))
    if chat.reasoning:
        thinking = tokenize(
            f"The question is about {topic}. I will check what is asked, think it through "
            "step by step, and then answer briefly."
        )
        out = replace(
            out, thinking=tuple(thinking), output_tokens=out.output_tokens + len(thinking)
        )
    return out


def _topic(text: str) -> str:
    """A name from the message (its first run of capitalised words after the first word),
    else its longest word: what string arguments and schema fields are filled with."""
    words = [w.strip(".,;:!?\"'()") for w in text.split()]
    run: list[str] = []
    for word in words[1:]:
        if word[:1].isupper() and word.isalpha():
            run.append(word)
        elif run:
            break
    if run:
        return " ".join(run)
    return max(words, key=len) if any(words) else "example"


def _tool_call(
    tools: list[dict[str, Any]], last_user: str, seed: str, rng: random.Random
) -> EmuToolCall:
    lowered = last_user.lower()
    tool = next((t for t in tools if str(t.get("name", "")).lower() in lowered), tools[0])
    params = tool.get("parameters")
    args = schema_instance(params if isinstance(params, dict) else {}, _topic(last_user), rng)
    if not isinstance(args, dict):
        args = {}
    text = json.dumps(args, ensure_ascii=False)
    step = max(1, -(-len(text) // _ARG_PIECES))
    pieces = tuple(text[i : i + step] for i in range(0, len(text), step))
    key = hashlib.sha256(f"{seed}:{tool.get('name')}".encode()).hexdigest()[:24]
    return EmuToolCall(key, str(tool.get("name")), args, pieces)


def schema_instance(
    schema: dict[str, Any], word: str, rng: random.Random, root: dict[str, Any] | None = None
) -> Any:
    """A value valid for a (pydantic-style) JSON schema: every property filled."""
    root = root if root is not None else schema
    if not isinstance(schema, dict):
        return None
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        node: Any = root
        for key in ref[2:].split("/"):
            node = node.get(key, {}) if isinstance(node, dict) else {}
        return schema_instance(node, word, rng, root)
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            typed = [o for o in options if isinstance(o, dict) and o.get("type") != "null"]
            return schema_instance((typed or options)[0], word, rng, root)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or "properties" in schema:
        props = schema.get("properties") or {}
        return {name: schema_instance(sub, word, rng, root) for name, sub in props.items()}
    if kind == "array":
        low = int(schema.get("minItems", 1) or 1)
        return [schema_instance(schema.get("items") or {}, word, rng, root) for _ in range(low)]
    if kind == "integer":
        return _number(schema, rng.randint(1, 9))
    if kind == "number":
        return _number(schema, rng.randint(10, 99) / 10)
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return word if kind == "string" or kind is None else None


def _number(schema: dict[str, Any], value: float) -> Any:
    low = schema.get("minimum", schema.get("exclusiveMinimum"))
    high = schema.get("maximum", schema.get("exclusiveMaximum"))
    if isinstance(low, int | float) and value <= low:
        value = low + (1 if "exclusiveMinimum" in schema else 0)
    if isinstance(high, int | float) and value >= high:
        value = high - (1 if "exclusiveMaximum" in schema else 0)
    return value
