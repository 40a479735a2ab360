"""Bearer tokens: each has a name (what logs and metrics show; the token itself never
leaves this module's objects), its own concurrency limit, and for the OpenAI-compatible
gateway the models it may use and its budget per minute.

Tokens come from N3_SERVE_TOKEN (one token named "default"), from create_app(token=...,
tokens=...), and from a token file (--token-file, N3_SERVE_TOKEN_FILE), one token a line:

    # name     token                              options
    alice      4f1c0d8e6b7a4f0e9d2c1b0a98765432   max_concurrent=8
    ci-bot     0a1b2c3d4e5f60718293a4b5c6d7e8f9
    app        9f8e7d6c5b4a39281706f5e4d3c2b1a0   models=fast,chain:summary requests_per_minute=60
    # a line with a token alone names it "default" (a Docker or Kubernetes secret file)

`#` starts a comment; names are letters, digits and _ . @ -. Options (`key=value`):
max_concurrent (requests running at once in a worker), models (comma-separated names a
client may send as `model` to /v1/chat/completions: routes, model strings, chain:NAME;
absent: any), requests_per_minute and tokens_per_minute (the token's budget in a worker)."""

from __future__ import annotations

import logging
import os
import re
import stat
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

logger = logging.getLogger("n3_notebook.serve")

DEFAULT_NAME = "default"
TOKEN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
#: Shorter tokens are accepted with a warning (guessable; `python -c "import secrets;
#: print(secrets.token_urlsafe(32))"` makes a good one).
MIN_TOKEN_CHARS = 16
NUMBER_OPTIONS = ("max_concurrent", "requests_per_minute", "tokens_per_minute")


class TokenFileError(ValueError):
    """A token file that cannot be used (the message names the file and line, never a token)."""


@dataclass(frozen=True)
class ApiToken:
    """One accepted bearer token. `max_concurrent` None: the app's per-token default;
    `models` None: every model; budgets None: unbounded."""

    name: str
    token: str = field(repr=False)
    max_concurrent: int | None = None
    models: frozenset[str] | None = None
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None

    def __post_init__(self) -> None:
        if not TOKEN_NAME.match(self.name):
            raise ValueError(
                f"token name {self.name!r} is not allowed; use letters, digits and _ . @ - "
                "(at most 64 characters)"
            )
        if not self.token or any(c.isspace() for c in self.token):
            raise ValueError(f"token {self.name!r} is empty or contains whitespace")
        for option in ("max_concurrent", "requests_per_minute", "tokens_per_minute"):
            value = getattr(self, option)
            if value is not None and value < 1:
                raise ValueError(f"token {self.name!r}: {option} must be at least 1")
        if self.models is not None and not self.models:
            raise ValueError(f"token {self.name!r}: models= lists no model")

    def may_use(self, model: str) -> bool:
        return self.models is None or model in self.models


def load_token_file(path: str | os.PathLike[str]) -> list[ApiToken]:
    """The tokens of a token file (format in the module docstring)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
        mode = p.stat().st_mode
    except OSError as exc:
        raise TokenFileError(f"cannot read the token file {p}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise TokenFileError(f"the token file {p} is not UTF-8 text") from None
    if mode & stat.S_IROTH:
        logger.warning("the token file %s is readable by every user (chmod 600 it)", p)
    tokens: list[ApiToken] = []
    for number, line in enumerate(text.splitlines(), 1):
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        where = f"{p}, line {number}"
        if len(fields) == 1:
            name, secret, options = DEFAULT_NAME, fields[0], []
        else:
            name, secret, options = fields[0], fields[1], fields[2:]
        numbers: dict[str, int] = {}
        models: frozenset[str] | None = None
        for option in options:
            key, _, value = option.partition("=")
            if key == "models":
                models = frozenset(m.strip() for m in value.split(",") if m.strip())
            elif key in NUMBER_OPTIONS and value.isdigit():
                numbers[key] = int(value)
            else:
                raise TokenFileError(
                    f"{where}: unknown option or value {key!r}; a line is `NAME TOKEN "
                    "[max_concurrent=N] [models=A,B] [requests_per_minute=N] "
                    "[tokens_per_minute=N]`, or a token alone"
                )
        try:
            tokens.append(ApiToken(name, secret, models=models, **numbers))
        except ValueError as exc:
            raise TokenFileError(f"{where}: {exc}") from None
    if not tokens:
        raise TokenFileError(f"the token file {p} holds no token")
    return tokens


def collect_tokens(
    token: str | None,
    tokens: Mapping[str, str] | Sequence[ApiToken] | None,
    token_file: str | os.PathLike[str] | None,
) -> list[ApiToken]:
    """Every accepted token from every source, names checked to be unique."""
    found: list[ApiToken] = []
    if token:
        found.append(ApiToken(DEFAULT_NAME, token))
    if isinstance(tokens, Mapping):
        found += [ApiToken(name, secret) for name, secret in tokens.items()]
    elif tokens:
        found += list(tokens)
    if token_file:
        found += load_token_file(token_file)
    _check_unique(found)
    for t in found:
        if len(t.token) < MIN_TOKEN_CHARS:
            logger.warning(
                "token %r is shorter than %d characters: easy to guess", t.name, MIN_TOKEN_CHARS
            )
    return found


def _check_unique(tokens: Iterable[ApiToken]) -> None:
    names: set[str] = set()
    secrets: set[str] = set()
    for t in tokens:
        if t.name in names:
            raise ValueError(f"two tokens are named {t.name!r}; give each token its own name")
        if t.token in secrets:
            raise ValueError(f"token {t.name!r} is the same token as another one")
        names.add(t.name)
        secrets.add(t.token)


__all__ = [
    "DEFAULT_NAME",
    "MIN_TOKEN_CHARS",
    "NUMBER_OPTIONS",
    "ApiToken",
    "TokenFileError",
    "collect_tokens",
    "load_token_file",
]
