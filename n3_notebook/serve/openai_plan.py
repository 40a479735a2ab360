"""What an OpenAI chat request asks for, checked before anything is called: its model (a
route, a model string or chain:NAME, and whether the token may use it), its messages
(text, images, tool calls and results) as the provider core's Messages, its tools and
response_format, the server's limits, and a chain's inputs from the last user message.
Every refusal is a ServeError, answered in OpenAI's shape by the routes (openai_compat.py)."""

from __future__ import annotations

import json
from typing import Any

from ..chain import Chain, ChainError
from ..chain.model import REQUIRED
from ..core.errors import LLMError
from ..core.images import Image, ImageError
from ..core.limits import estimate_tokens
from ..core.registry import resolve_model
from ..core.schema import as_output_schema
from ..core.tools import Tool, as_tools
from ..core.types import Message, ToolCall
from .errors import ServeError
from .openai_wire import ROLES, ChatCompletionRequest, ChatMessage
from .state import ServeState

CHAIN_PREFIX = "chain:"


class ChatPlan:
    """A checked request: what to call, with what, and what it is charged."""

    __slots__ = (
        "chain",
        "estimate",
        "include_usage",
        "messages",
        "model",
        "params",
        "shared",
        "token",
    )

    def __init__(
        self,
        model: str,
        messages: list[Message],
        params: dict[str, Any],
        include_usage: bool,
        estimate: int,
        token: str | None,
        chain: str | None,
    ) -> None:
        self.model = model
        self.messages = messages
        self.params = params
        self.include_usage = include_usage
        self.estimate = estimate
        self.token = token
        self.chain = chain
        self.shared = False  # the token's budget was charged in Redis


async def charge_token(state: ServeState, plan: ChatPlan) -> None:
    """Charge the request to its token's budget; a 429 with Retry-After when it is spent."""
    token = plan.token
    budget = state.gateway.budgets.get(token) if token is not None else None
    if budget is None:
        return
    wait, plan.shared = await budget.take(plan.estimate)
    if wait > 0:
        raise ServeError(
            429,
            "token_budget_exceeded",
            f"the token {token!r} has spent its requests or tokens per minute; retry in "
            f"{wait:.1f} s",
            {"retry-after": str(max(1, int(wait + 0.999)))},
        )


def _parts(content: Any, index: int, role: str) -> str | list[str | Image]:
    """A message's content: text, or text and images (image_url parts, user turns only)."""
    if content is None or isinstance(content, str):
        return content or ""
    parts: list[str | Image] = []
    for part in content:
        kind = part.get("type", "text")
        if kind == "text" and isinstance(part.get("text"), str):
            parts.append(part["text"])
        elif kind == "image_url" and role == "user":
            ref = part.get("image_url")
            url = ref.get("url") if isinstance(ref, dict) else ref
            try:
                parts.append(Image.from_url(str(url or "")))
            except ImageError as exc:
                raise ServeError(
                    400, "invalid_image", f"messages[{index}]: {exc}", param=f"messages[{index}]"
                ) from None
        else:
            raise ServeError(
                400,
                "unsupported_content",
                f"messages[{index}]: a {kind!r} part is not supported here; send text parts "
                "(and image_url parts in user messages)",
                param=f"messages[{index}].content",
            )
    if all(isinstance(p, str) for p in parts):
        return "\n".join(p for p in parts if isinstance(p, str))
    return parts


def _tool_calls(m: ChatMessage, index: int) -> tuple[ToolCall, ...]:
    calls = []
    for call in m.tool_calls or ():
        fn = call.get("function") or {}
        try:
            raw = fn.get("arguments") or "{}"
            arguments = json.loads(raw) if isinstance(raw, str) else raw
            if not isinstance(arguments, dict):
                raise ValueError
            calls.append(ToolCall(str(call.get("id") or ""), str(fn["name"]), arguments))
        except (KeyError, ValueError, TypeError):
            raise ServeError(
                400,
                "invalid_tool_call",
                f"messages[{index}].tool_calls: each needs function.name and function."
                "arguments, a JSON object",
                param=f"messages[{index}].tool_calls",
            ) from None
    return tuple(calls)


def _messages(req: ChatCompletionRequest) -> list[Message]:
    out = []
    for i, m in enumerate(req.messages):
        role = ROLES.get(m.role)
        if role is None:
            raise ServeError(
                400,
                "unsupported_role",
                f"messages[{i}]: role {m.role!r} is not supported; use system, developer, "
                "user, assistant or tool",
                param=f"messages[{i}].role",
            )
        try:
            message = Message.coerce(
                Message(
                    role,  # type: ignore[arg-type]
                    _parts(m.content, i, role),
                    _tool_calls(m, i),
                    m.tool_call_id,
                    m.name,
                )
            )
        except ValueError as exc:
            raise ServeError(
                400, "invalid_message", f"messages[{i}]: {exc}", param=f"messages[{i}]"
            ) from None
        out.append(message)
    return out


def _features(req: ChatCompletionRequest) -> dict[str, Any]:
    """tools and response_format (json_schema) as the provider core takes them (checked)."""
    params: dict[str, Any] = {}
    try:
        if req.tools:
            tools = []
            for t in req.tools:
                fn = t.get("function") if t.get("type", "function") == "function" else None
                if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
                    raise ValueError('each tool is {"type": "function", "function": {"name": ...}}')
                parameters = fn.get("parameters") or {"type": "object", "properties": {}}
                tools.append(Tool(fn["name"], str(fn.get("description") or ""), parameters))
            params["tools"] = as_tools(tools)
    except ValueError as exc:
        raise ServeError(400, "invalid_tools", f"tools: {exc}", param="tools") from None
    fmt = req.response_format
    if fmt and fmt.get("type") == "json_schema":
        spec = fmt.get("json_schema") or {}
        schema = spec.get("schema") if isinstance(spec, dict) else None
        try:
            params["schema"] = as_output_schema(schema)
        except ValueError as exc:
            raise ServeError(
                400, "invalid_response_format", f"response_format: {exc}", param="response_format"
            ) from None
    elif fmt and fmt.get("type") not in (None, "text"):
        raise ServeError(
            400,
            "unsupported_response_format",
            f"response_format type {fmt.get('type')!r} is not supported; use json_schema",
            param="response_format",
        )
    return params


def plan_chat(state: ServeState, req: ChatCompletionRequest, token: str | None) -> ChatPlan:
    """Check a request before anything is called: model, messages, limits, the token's
    models. Raises ServeError (answered in OpenAI's shape)."""
    gw = state.gateway
    model = req.model.strip()
    if not gw.may_use(token, model):
        raise ServeError(
            403,
            "model_not_allowed",
            f"the token {token!r} may not use the model {model!r}",
            param="model",
        )
    chain: str | None = None
    if model.startswith(CHAIN_PREFIX):
        chain = model[len(CHAIN_PREFIX) :]
        if chain not in state.chains:
            raise _no_model(state, model)
    elif model not in gw.router.config.routes:
        allowed = state.allowed_models
        if allowed is not None and model not in allowed:
            raise _no_model(state, model)
        try:
            resolve_model(model)
        except LLMError:
            raise _no_model(state, model) from None
    messages = _messages(req)
    limits = state.limits
    texts = [m.text for m in messages]
    if sum(len(t) for t in texts) > limits.max_prompt_chars:
        raise ServeError(
            400,
            "context_length_exceeded",
            f"the messages hold more than this server's limit of {limits.max_prompt_chars} "
            "characters (N3_SERVE_MAX_PROMPT_CHARS)",
            param="messages",
        )
    max_tokens = req.max_completion_tokens or req.max_tokens
    if max_tokens is not None and max_tokens > limits.max_output_tokens:
        raise ServeError(
            400,
            "max_tokens_too_large",
            f"max_tokens is {max_tokens}, over this server's limit of "
            f"{limits.max_output_tokens} (N3_SERVE_MAX_OUTPUT_TOKENS)",
            param="max_tokens",
        )
    params: dict[str, Any] = {
        k: v
        for k, v in (
            ("temperature", req.temperature),
            ("top_p", req.top_p),
            ("max_tokens", max_tokens),
            ("stop", req.stop),
        )
        if v is not None
    }
    params.update(_features(req))
    if req.n3_cache:
        params["cache"] = True
    estimate = estimate_tokens({"texts": texts, "max_tokens": max_tokens})
    include = bool(req.stream_options and req.stream_options.include_usage)
    return ChatPlan(model, messages, params, include, estimate, token, chain)


def _no_model(state: ServeState, model: str) -> ServeError:
    return ServeError(
        404,
        "model_not_found",
        f"The model {model!r} does not exist on this server; GET /v1/models lists the "
        "routes and chains it serves, and any provider:model string works unless the server "
        "restricts models",
        param="model",
    )


def chain_inputs(name: str, chain: Chain, messages: list[Message]) -> dict[str, Any]:
    """A chain's inputs from the last user message: a JSON object in it is the inputs;
    plain text goes to the one required input (or the one input). Checked against the
    chain's inputs (a 400 naming them)."""
    given = _given_inputs(name, chain, messages)
    try:
        chain.resolve_inputs(given)
    except ChainError as exc:
        raise ServeError(400, "chain_inputs", f"chain {name!r}: {exc}", param="messages") from None
    return given


def _given_inputs(name: str, chain: Chain, messages: list[Message]) -> dict[str, Any]:
    text = next((m.text for m in reversed(messages) if m.role == "user"), "")
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            given = json.loads(stripped)
        except ValueError:
            given = None
        if isinstance(given, dict):
            return given
    required = [k for k, v in chain.inputs.items() if v is REQUIRED]
    names = required or list(chain.inputs)
    if not names:
        return {}
    if len(names) == 1:
        return {names[0]: text}
    raise ServeError(
        400,
        "chain_inputs",
        f"the chain {name!r} takes the inputs {', '.join(names)}: send the last user "
        'message as a JSON object, e.g. {"' + names[0] + '": "..."}',
        param="messages",
    )


__all__ = ["CHAIN_PREFIX", "ChatPlan", "chain_inputs", "charge_token", "plan_chat"]
