"""The chains an app serves: their names checked, every step's model resolved at startup,
and the catalog GET /chains answers with."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

from ..chain import Chain
from ..chain.model import REQUIRED
from ..core.errors import LLMError
from ..core.offline import is_offline
from ..core.registry import get_provider_class, resolve_model
from .settings import OFFLINE_DEFAULT_MODEL
from .state import ServeState

CHAIN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


def named_chains(chains: Mapping[str, Chain] | Sequence[Chain]) -> dict[str, Chain]:
    """name -> chain, from a mapping or a list of named chains; every name a URL segment."""
    if isinstance(chains, Mapping):
        named = dict(chains)
    else:
        named = {}
        for chain in chains:
            if not chain.name:
                raise ValueError("every chain served from a list needs a name (Chain.name)")
            if chain.name in named:
                raise ValueError(f"two chains are named {chain.name!r}")
            named[chain.name] = chain
    for name, chain in named.items():
        if not isinstance(chain, Chain):
            raise TypeError(f"chain {name!r} is a {type(chain).__name__}, not a Chain")
        if not CHAIN_NAME.match(name):
            raise ValueError(
                f"chain name {name!r} cannot be a URL segment; use letters, digits, _ . -"
            )
    return named


def resolve_models(
    chains: dict[str, Chain], default_model: str | None, check_keys: bool
) -> dict[str, dict[str, str]]:
    """chain -> step -> model string, checked now: an unknown model or a provider without
    its key is a startup error, not the first request's."""
    out: dict[str, dict[str, str]] = {}
    fallback = default_model or (OFFLINE_DEFAULT_MODEL if is_offline() else None)
    for name, chain in chains.items():
        steps: dict[str, str] = {}
        for step in chain.steps:
            spec = step.model or chain.default_model or fallback
            if not spec:
                raise ValueError(
                    f"chain {name!r}, step {step.name!r} names no model and no default is "
                    "set; write one after `step NAME:`, or pass default_model"
                )
            try:
                provider, _ = resolve_model(spec)
            except LLMError as exc:
                raise ValueError(f"chain {name!r}, step {step.name!r}: {exc}") from None
            if check_keys and not is_offline():
                cls = get_provider_class(provider)
                if cls.requires_key and not any(os.environ.get(v) for v in cls.env_keys):
                    raise ValueError(
                        f"chain {name!r}, step {step.name!r} uses {spec}, but "
                        f"{' or '.join(cls.env_keys)} is not set in the server's environment "
                        "(or set N3_OFFLINE=1 to serve from the bundled emulator)"
                    )
            steps[step.name] = spec
        out[name] = steps
    return out


def chain_list(state: ServeState) -> dict[str, Any]:
    """The body of GET /chains."""
    out = []
    for name, chain in state.chains.items():
        deps = chain.dependencies()
        out.append(
            {
                "name": name,
                "inputs": [
                    {"name": k, "required": True}
                    if v is REQUIRED
                    else {"name": k, "required": False, "default": v}
                    for k, v in chain.inputs.items()
                ],
                "steps": [
                    {
                        "name": s.name,
                        "model": state.models[name][s.name],
                        "depends_on": sorted(deps[s.name]),
                    }
                    for s in chain.steps
                ],
                "run": f"/chains/{name}/run",
                "stream": f"/chains/{name}/stream",
            }
        )
    return {"chains": out}


__all__ = ["CHAIN_NAME", "chain_list", "named_chains", "resolve_models"]
