"""The gateway's configuration file (`python -m n3_notebook serve FILE --config gateway.toml`):

    [routes]            # a name clients use as `model`, tried in order
    fast = ["openai:gpt-4o-mini", "anthropic:claude-3-5-haiku-latest"]

    [keys]              # a pool per provider, least-recently-limited first
    openai = ["$OPENAI_API_KEY", "$OPENAI_API_KEY_2"]

    [limits."openai:gpt-4o-mini"]   # this worker's budget for one upstream
    requests_per_minute = 500
    tokens_per_minute = 200000

    [breaker]           # per upstream: opens after `failures` failures in a row,
    failures = 5        # lets one probe through after `cooldown` seconds
    cooldown = 30

TOML is read by the standard library (tomllib). Everything is checked when the file is
loaded, before the server listens: an error names the file, the line and the key, and says
what to write instead. A key written as "$NAME" is read from the environment variable NAME
(the value itself never appears in a message)."""

from __future__ import annotations

import math
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.errors import LLMError
from ..core.redact import register_secret
from ..core.registry import get_provider_class, resolve_model

#: A route name is what clients send as `model`; it must not look like `provider:model`.
ROUTE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@/-]{0,99}$")
DEFAULT_FAILURES = 5
DEFAULT_COOLDOWN = 30.0
TABLES = ("routes", "keys", "limits", "breaker")
LIMIT_FIELDS = ("requests_per_minute", "tokens_per_minute")

_HEADER = re.compile(r"^\s*\[([^\[\]]+)\]\s*(?:#.*)?$")


class GatewayConfigError(ValueError):
    """A gateway configuration that cannot be used; the message names file, line and key."""


@dataclass(frozen=True)
class UpstreamLimit:
    """A worker's budget for one upstream model (None: no bound)."""

    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None


@dataclass(frozen=True)
class BreakerConfig:
    failures: int = DEFAULT_FAILURES
    cooldown: float = DEFAULT_COOLDOWN


@dataclass(frozen=True)
class GatewayConfig:
    """routes: name -> model strings tried in order. keys: provider -> API keys (values, not
    the $NAME references). limits: model string -> its budget. breaker: circuit breaker."""

    routes: dict[str, tuple[str, ...]] = field(default_factory=dict)
    keys: dict[str, tuple[str, ...]] = field(default_factory=dict, repr=False)
    limits: dict[str, UpstreamLimit] = field(default_factory=dict)
    breaker: BreakerConfig = field(default_factory=BreakerConfig)
    source: str = "<config>"


def load_gateway_config(path: str | os.PathLike[str]) -> GatewayConfig:
    """The checked configuration in a TOML file (format in the module docstring)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise GatewayConfigError(f"cannot read {p}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise GatewayConfigError(f"{p} is not UTF-8 text") from None
    return parse_gateway_config(text, str(p))


def parse_gateway_config(text: str, source: str = "<config>") -> GatewayConfig:
    """The checked configuration in TOML text; `source` names it in errors."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise GatewayConfigError(_syntax_error(str(exc), text, source)) from None
    where = _Where(text, source)
    for name in data:
        if name not in TABLES:
            raise where.error(
                (),
                name,
                f"unknown table; a gateway configuration has {', '.join(TABLES)}",
            )
    routes = _routes(_table(data, "routes", where), where)
    keys = _keys(_table(data, "keys", where), where)
    limits = _limits(_table(data, "limits", where), where)
    breaker = _breaker(_table(data, "breaker", where), where)
    return GatewayConfig(routes, keys, limits, breaker, source)


def _syntax_error(message: str, text: str, source: str) -> str:
    """tomllib's message with its position first, like every other error here."""
    m = re.search(r"\s*\(at line (\d+), column (\d+)\)$", message)
    if m:
        at = f", line {m.group(1)}, column {m.group(2)}"
        message = message[: m.start()]
    elif message.endswith("(at end of document)"):
        at = f", line {max(1, len(text.splitlines()))} (the end)"
        message = message[: -len("(at end of document)")].rstrip()
    else:
        at = ""
    return f"{source}{at}: not valid TOML: {message}"


class _Where:
    """Finds the line of a key in the TOML text (for messages; tomllib keeps no positions)."""

    def __init__(self, text: str, source: str) -> None:
        self.lines = text.splitlines()
        self.source = source

    def _key_line(self, table: tuple[str, ...], key: str) -> int | None:
        current: tuple[str, ...] = ()
        for number, line in enumerate(self.lines, 1):
            m = _HEADER.match(line)
            if m:
                current = _header_path(m.group(1))
                continue
            if current != table:
                continue
            stripped = line.lstrip()
            for form in (key, f'"{key}"', f"'{key}'"):
                if stripped.startswith(form) and stripped[len(form) :].lstrip().startswith("="):
                    return number
        return None

    def _header_line(self, table: tuple[str, ...]) -> int | None:
        for number, line in enumerate(self.lines, 1):
            m = _HEADER.match(line)
            if m and _header_path(m.group(1)) == table:
                return number
        return None

    def error(self, table: tuple[str, ...], key: str, message: str) -> GatewayConfigError:
        number = (
            self._key_line(table, key)
            or self._header_line((*table, key))
            or self._header_line(table)
        )
        at = f", line {number}" if number is not None else ""
        path = ".".join(_quote(k) for k in (*table, key))
        return GatewayConfigError(f"{self.source}{at}, {path}: {message}")


def _header_path(inner: str) -> tuple[str, ...]:
    try:
        parsed: Any = tomllib.loads(f"[{inner}]")
    except tomllib.TOMLDecodeError:
        return ()
    path: list[str] = []
    while isinstance(parsed, dict) and len(parsed) == 1:
        ((k, parsed),) = parsed.items()
        path.append(k)
    return tuple(path)


def _quote(key: str) -> str:
    return key if re.match(r"^[A-Za-z0-9_-]+$", key) else f'"{key}"'


def _table(data: dict[str, Any], name: str, where: _Where) -> dict[str, Any]:
    value = data.get(name, {})
    if not isinstance(value, dict):
        raise where.error((), name, f"must be a table ([{name}]), not a {type(value).__name__}")
    return value


def _strings(value: Any, where: _Where, table: tuple[str, ...], key: str) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise where.error(table, key, 'must be a non-empty list of strings, e.g. ["a", "b"]')
    return [v.strip() for v in value]


def _routes(table: dict[str, Any], where: _Where) -> dict[str, tuple[str, ...]]:
    routes: dict[str, tuple[str, ...]] = {}
    for name, value in table.items():
        if not ROUTE_NAME.match(name):
            raise where.error(
                ("routes",), name, "a route name is letters, digits and _ . @ / - (no ':')"
            )
        specs = _strings(value, where, ("routes",), name)
        for spec in specs:
            if spec.startswith("chain:"):
                raise where.error(
                    ("routes",), name, f"{spec!r}: a route lists models; clients name chains"
                )
            try:
                resolve_model(spec)
            except LLMError as exc:
                raise where.error(("routes",), name, str(exc)) from None
        routes[name] = tuple(specs)
    return routes


def _keys(table: dict[str, Any], where: _Where) -> dict[str, tuple[str, ...]]:
    keys: dict[str, tuple[str, ...]] = {}
    for provider, value in table.items():
        try:
            cls = get_provider_class(provider)
        except LLMError as exc:
            raise where.error(("keys",), provider, str(exc)) from None
        values: list[str] = []
        for ref in _strings(value, where, ("keys",), provider):
            if ref.startswith("$"):
                var = ref[1:].strip("{}")
                secret = os.environ.get(var, "")
                if not secret:
                    raise where.error(
                        ("keys",),
                        provider,
                        f"the environment variable {var} is not set (or is empty); set it "
                        "before starting the server, or remove it from the pool",
                    )
            else:
                secret = ref
            register_secret(secret)
            if secret in values:
                raise where.error(("keys",), provider, "the same key is listed twice")
            values.append(secret)
        keys[cls.name or provider] = tuple(values)
    return keys


def _positive_int(value: Any, where: _Where, table: tuple[str, ...], key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise where.error(table, key, f"must be a whole number of at least 1, got {value!r}")
    return value


def _limits(table: dict[str, Any], where: _Where) -> dict[str, UpstreamLimit]:
    limits: dict[str, UpstreamLimit] = {}
    for spec, value in table.items():
        if not isinstance(value, dict):
            raise where.error(
                ("limits",),
                spec,
                'must be a table: [limits."provider:model"] with '
                "requests_per_minute and/or tokens_per_minute",
            )
        try:
            resolve_model(spec)
        except LLMError as exc:
            raise where.error(("limits",), spec, str(exc)) from None
        for name in value:
            if name not in LIMIT_FIELDS:
                raise where.error(
                    ("limits", spec), name, f"unknown limit; use {' or '.join(LIMIT_FIELDS)}"
                )
        rpm = value.get("requests_per_minute")
        tpm = value.get("tokens_per_minute")
        limits[spec] = UpstreamLimit(
            _positive_int(rpm, where, ("limits", spec), "requests_per_minute")
            if rpm is not None
            else None,
            _positive_int(tpm, where, ("limits", spec), "tokens_per_minute")
            if tpm is not None
            else None,
        )
    return limits


def _breaker(table: dict[str, Any], where: _Where) -> BreakerConfig:
    for name in table:
        if name not in ("failures", "cooldown"):
            raise where.error(("breaker",), name, "unknown setting; use failures and cooldown")
    failures = table.get("failures", DEFAULT_FAILURES)
    failures = _positive_int(failures, where, ("breaker",), "failures")
    cooldown = table.get("cooldown", DEFAULT_COOLDOWN)
    if (
        isinstance(cooldown, bool)
        or not isinstance(cooldown, (int, float))
        or not math.isfinite(cooldown)
        or cooldown <= 0
    ):
        raise where.error(("breaker",), "cooldown", f"must be seconds above 0, got {cooldown!r}")
    return BreakerConfig(failures, float(cooldown))


__all__ = [
    "BreakerConfig",
    "GatewayConfig",
    "GatewayConfigError",
    "UpstreamLimit",
    "load_gateway_config",
    "parse_gateway_config",
]
