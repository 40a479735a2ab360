"""Structured output: `schema=` as a pydantic model (or any type pydantic reads) or a JSON
schema dict, reduced to one JSON schema that each provider sends in its native form, and
the answer's text validated back into an object (pydantic for types, jsonschema for dicts).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jsonschema  # type: ignore[import-untyped]
from pydantic import PydanticUserError, TypeAdapter, ValidationError

from .errors import StructuredOutputError

__all__ = ["OutputSchema", "as_output_schema"]

_SNIPPET = 200


@dataclass(frozen=True, slots=True)
class OutputSchema:
    """The JSON schema of the wanted answer, its name, and how to validate an answer."""

    name: str
    schema: dict[str, Any]
    adapter: TypeAdapter[Any] | None = None

    def parse(self, text: str, provider: str | None = None) -> Any:
        """The validated object of an answer's text; StructuredOutputError keeps the text."""
        body = _unfence(text)
        try:
            if self.adapter is not None:
                return self.adapter.validate_json(body)
            value = json.loads(body)
            jsonschema.validate(value, self.schema)
            return value
        except ValidationError as exc:
            if any(e["type"] == "json_invalid" for e in exc.errors()):
                raise _error(
                    text, f"is not valid JSON ({exc.errors()[0]['msg']})", provider
                ) from exc
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'value'}: {e['msg']}"
                for e in exc.errors()[:5]
            )
            raise _error(
                text, f"does not match the schema {self.name} ({problems})", provider
            ) from exc
        except ValueError as exc:
            raise _error(text, f"is not valid JSON ({exc})", provider) from exc
        except jsonschema.ValidationError as exc:
            where = "/".join(str(p) for p in exc.absolute_path) or "value"
            raise _error(
                text, f"does not match the schema {self.name} ({where}: {exc.message})", provider
            ) from exc


def as_output_schema(schema: Any) -> OutputSchema | None:
    """schema= as given -> OutputSchema (None for None)."""
    if schema is None or isinstance(schema, OutputSchema):
        return schema
    if isinstance(schema, Mapping):
        body = dict(schema)
        if not body:
            raise ValueError("schema= is an empty dict; give a JSON schema or a pydantic model")
        try:
            jsonschema.validators.validator_for(body).check_schema(body)
        except jsonschema.SchemaError as exc:
            raise ValueError(f"schema= is not a valid JSON schema: {exc.message}") from exc
        return OutputSchema(_name(body.get("title") or "response"), body)
    if isinstance(schema, str):
        raise ValueError(
            f"schema={schema!r} is a string; pass the pydantic model class itself (or a "
            "JSON schema dict)"
        )
    try:
        adapter: TypeAdapter[Any] = TypeAdapter(schema)
        body = adapter.json_schema()
    except (PydanticUserError, TypeError) as exc:  # schema generation errors included
        first = str(exc).split("\n", 1)[0]
        raise ValueError(
            f"schema= must be a pydantic model (or a type pydantic understands) or a JSON "
            f"schema dict; {schema!r} is neither ({first})"
        ) from exc
    return OutputSchema(
        _name(getattr(schema, "__name__", None) or body.get("title")), body, adapter
    )


def _name(raw: Any) -> str:
    """Provider-safe name: letters, digits, _ and - only (OpenAI's rule), at most 64."""
    text = "".join(c if c.isalnum() or c in "_-" else "_" for c in str(raw or "response"))
    return text[:64] or "response"


def _unfence(text: str) -> str:
    """The JSON inside a ```json fence, if the model wrapped it in one."""
    body = text.strip()
    if body.startswith("```"):
        body = body.split("\n", 1)[1] if "\n" in body else ""
        if body.rstrip().endswith("```"):
            body = body.rstrip()[:-3]
    return body


def _error(text: str, why: str, provider: str | None) -> StructuredOutputError:
    snippet = text if len(text) <= _SNIPPET else text[:_SNIPPET] + "…"
    err = StructuredOutputError(f"the answer {why}: {snippet!r}", provider=provider)
    err.raw_text = text
    return err


def closed(schema: Any) -> Any:
    """A copy of a JSON schema where every object says additionalProperties: false (what
    Anthropic's and OpenAI's strict structured output require); other keys untouched."""
    if isinstance(schema, list):
        return [closed(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: closed(v) for k, v in schema.items()}
    if out.get("type") == "object" and "additionalProperties" not in out:
        out["additionalProperties"] = False
    return out


def strict_ready(schema: Any) -> bool:
    """Whether OpenAI's strict mode takes this schema as it is: every object lists all its
    properties as required (a field with a default would make strict mode refuse it)."""
    if isinstance(schema, list):
        return all(strict_ready(s) for s in schema)
    if not isinstance(schema, dict):
        return True
    props = schema.get("properties")
    if isinstance(props, dict) and set(schema.get("required") or ()) != set(props):
        return False
    return all(strict_ready(v) for v in schema.values())
