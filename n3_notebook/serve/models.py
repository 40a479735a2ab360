"""Request and response models: one pydantic model per chain, derived from its inputs.

An input without a default is required. An input with a default takes values of the
default's JSON type (a string default: strings; a number: numbers; a list: lists; ...); a
required input, or one whose default is None, takes any JSON value but null. Unknown fields
are refused, so a typo is a 422 naming the field, not a silently ignored input."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from ..chain import Chain
from ..chain.model import REQUIRED

JsonValue = str | int | float | bool | list[Any] | dict[str, Any]


def _json_safe(value: Any) -> Any:
    if isinstance(value, (set, frozenset, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def input_type(default: Any) -> Any:
    """The field type an input with this default accepts."""
    if default is REQUIRED or default is None:
        return JsonValue
    if isinstance(default, bool):
        return bool
    if isinstance(default, int):
        return int
    if isinstance(default, float):
        return float
    if isinstance(default, str):
        return str
    if isinstance(default, (list, tuple, set, frozenset)):
        return list[Any]
    if isinstance(default, dict):
        return dict[str, Any]
    return JsonValue


def _model_name(chain_name: str) -> str:
    words = re.split(r"[^0-9A-Za-z]+", chain_name)
    return "".join(w[:1].upper() + w[1:] for w in words if w) + "Inputs"


def inputs_model(name: str, chain: Chain) -> type[BaseModel]:
    """A pydantic model of the chain's inputs (field aliases are the input names, so names
    such as `json` or `model_config` need no special care)."""
    fields: dict[str, Any] = {}
    for i, (key, default) in enumerate(chain.inputs.items()):
        typ = input_type(default)
        if default is REQUIRED:
            fields[f"f{i}"] = (typ, Field(..., alias=key, description=f"input {key} (required)"))
        else:
            safe = _json_safe(default)
            typ = typ | None if default is None else typ
            fields[f"f{i}"] = (typ, Field(safe, alias=key, description=f"input {key}"))
    model: type[BaseModel] = create_model(
        _model_name(name),
        __config__=ConfigDict(extra="forbid", populate_by_name=False),
        **fields,
    )
    model.__doc__ = f"The inputs of the chain {name!r}."
    return model


def inputs_of(model: BaseModel) -> dict[str, Any]:
    """The inputs a request gave, by input name (defaults stay the chain's own)."""
    return model.model_dump(by_alias=True, exclude_unset=True)


class GenerateRequest(BaseModel):
    """One prompt to one model."""

    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(..., min_length=1, description="the user message")
    model: str = Field(
        ..., min_length=1, max_length=200, description="a model string, e.g. openai:gpt-4o-mini"
    )
    system: str | None = Field(None, description="an optional system prompt")
    temperature: float | None = Field(None, ge=0, le=2)
    max_tokens: int | None = Field(None, ge=1)
    cache: bool = Field(
        False,
        description="answer from the server's response cache when it holds this request's "
        "answer (streamed back at once), and keep a new complete answer there",
    )


def generate_request_model(max_prompt_chars: int, max_output_tokens: int) -> type[GenerateRequest]:
    """GenerateRequest with this server's caps on the text and on max_tokens (the OpenAPI
    document shows them; a request over them is a 422 naming the field)."""
    model: type[GenerateRequest] = create_model(
        "GenerateRequest",
        __base__=GenerateRequest,
        prompt=(
            str,
            Field(..., min_length=1, max_length=max_prompt_chars, description="the user message"),
        ),
        system=(
            str | None,
            Field(None, max_length=max_prompt_chars, description="an optional system prompt"),
        ),
        max_tokens=(int | None, Field(None, ge=1, le=max_output_tokens)),
    )
    model.__doc__ = GenerateRequest.__doc__
    return model


def text_size(value: Any) -> int:
    """Characters of text in a JSON value (strings, keys included, at any depth)."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, dict):
        return sum(len(str(k)) + text_size(v) for k, v in value.items())
    if isinstance(value, list):
        return sum(text_size(v) for v in value)
    return 0


class Health(BaseModel):
    status: Literal["ok", "draining"]
    chains: int | None = None


class Usage(BaseModel):
    input_tokens: int
    output_tokens: int
    total_tokens: int


class GenerateResult(BaseModel):
    text: str
    model: str
    provider: str
    finish_reason: str | None
    usage: Usage
    cost_usd: float | None
    latency: float | None
    request_id: str | None
    cached: bool = False


class StepReport(BaseModel):
    state: Literal["done", "failed", "skipped", "cancelled", "waiting", "streaming"]
    model: str
    duration: float | None
    error: str | None
    input_tokens: int | None
    output_tokens: int | None
    cost_usd: float | None


class ChainRunResult(BaseModel):
    """chain.run(...).as_dict(): outputs, per-step timings, usage and cost."""

    name: str | None
    inputs: dict[str, Any]
    outputs: dict[str, str]
    duration: float
    usage: Usage
    cost_usd: float | None
    steps: dict[str, StepReport]


class ErrorDetail(BaseModel):
    type: str
    message: str


class ErrorResponse(BaseModel):
    error: ErrorDetail


class InputInfo(BaseModel):
    name: str
    required: bool
    default: Any = None


class StepInfo(BaseModel):
    name: str
    model: str
    depends_on: list[str]


class ChainInfo(BaseModel):
    name: str
    inputs: list[InputInfo]
    steps: list[StepInfo]
    run: str
    stream: str


class ChainList(BaseModel):
    chains: list[ChainInfo]
