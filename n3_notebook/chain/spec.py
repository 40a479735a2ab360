"""What a chain is: named steps, each a prompt template sent to a model; a step's answer
becomes a variable for later steps. Dependencies come from the names a template reads, so
steps whose inputs are ready run concurrently (a DAG, not a list). A ChainSpec is checked
when it is made (names, cycles); the parser produces one and the engine runs one."""

from __future__ import annotations

import ast
import builtins
import keyword
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..core.errors import ConfigurationError
from ..core.template import expressions

__all__ = ["REQUIRED", "ChainError", "ChainSpec", "Step", "merge_inputs"]

REQUIRED = object()  # marks an input without a default


class ChainError(ConfigurationError):
    """A chain that cannot run: a cycle, an unknown reference, a missing input, bad syntax."""

    def __init__(self, message: str, line: int | None = None) -> None:
        where = f"line {line}: " if line is not None else ""
        super().__init__(f"{where}{message}")
        self.line = line


@dataclass
class Step:
    """One step: `prompt` (a template) sent to `model` with `system` and `params`."""

    name: str
    prompt: str
    model: str | None = None
    system: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    line: int | None = None

    def reads(self) -> set[str]:
        """Every name the prompt and system templates read, builtins included (a step may
        be called `list` or `sum`, and then `{list}` means that step)."""
        names = self._names(self.prompt)
        if self.system:
            names |= self._names(self.system)
        return names

    def references(self) -> set[str]:
        """The names that must come from an input, a step or the notebook (no builtins)."""
        return {n for n in self.reads() if not hasattr(builtins, n)}

    def _names(self, template: str) -> set[str]:
        try:
            with warnings.catch_warnings():  # e.g. "invalid escape sequence" in a string
                warnings.simplefilter("ignore")
                parsed = expressions(template)
        except (ValueError, RecursionError, MemoryError) as exc:
            raise ChainError(
                f"step {self.name!r}: a {{...}} group in the prompt cannot be read "
                f"({type(exc).__name__}); write {{{{ and }}}} for literal braces",
                self.line,
            ) from None
        names: set[str] = set()
        for _, tree in parsed:
            nodes = list(ast.walk(tree))
            bound = {
                n.id for n in nodes if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
            } | {n.arg for n in nodes if isinstance(n, ast.arg)}  # comprehension, lambda
            names |= {
                n.id for n in nodes if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)
            } - bound
        return names


@dataclass
class ChainSpec:
    """A validated set of steps and inputs (the parser makes one from %%chain text)."""

    steps: list[Step]
    inputs: dict[str, Any] = field(default_factory=dict)
    name: str | None = None
    default_model: str | None = None
    input_lines: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.validate()

    @property
    def step_names(self) -> list[str]:
        return [s.name for s in self.steps]

    def step(self, name: str) -> Step:
        for s in self.steps:
            if s.name == name:
                return s
        raise KeyError(name)

    def dependencies(self) -> dict[str, set[str]]:
        """step -> the steps it reads."""
        names = set(self.step_names)
        return {s.name: s.reads() & names for s in self.steps}

    def validate(self, namespace: Mapping[str, Any] | None = None) -> None:
        """Duplicate names, cycles and (given the outside namespace) unknown references."""
        seen: dict[str, int | None] = {}
        for s in self.steps:
            if not s.name.isidentifier():
                raise ChainError(f"step name {s.name!r} is not a valid identifier", s.line)
            if keyword.iskeyword(s.name):
                raise ChainError(
                    f"step name {s.name!r} is a Python keyword; {{{s.name}}} could not refer "
                    "to it. Choose another name",
                    s.line,
                )
            if s.name in seen or s.name in self.inputs:
                raise ChainError(f"the name {s.name!r} is defined twice", s.line)
            seen[s.name] = s.line
        if not self.steps:
            raise ChainError("the chain has no steps; write `step NAME: provider:model`")
        deps = self.dependencies()
        for s in self.steps:
            if s.name in deps[s.name]:
                raise ChainError(f"step {s.name!r} refers to itself", s.line)
        self._check_cycles(deps)
        if namespace is not None:
            self.check_references(namespace)

    def _check_cycles(self, deps: dict[str, set[str]]) -> None:
        state: dict[str, int] = {}
        lines = {s.name: s.line for s in self.steps}

        def visit(node: str, path: list[str]) -> None:
            state[node] = 1
            for dep in sorted(deps[node]):
                if state.get(dep) == 1:
                    cycle = [*path[path.index(dep) :], dep] if dep in path else [node, dep]
                    raise ChainError(f"the steps form a cycle: {' -> '.join(cycle)}", lines[dep])
                if state.get(dep) is None:
                    visit(dep, [*path, dep])
            state[node] = 2

        for s in self.steps:
            if state.get(s.name) is None:
                visit(s.name, [s.name])

    def check_references(self, namespace: Mapping[str, Any]) -> None:
        """Every name a step reads is an input, a step, or in the namespace."""
        known = set(self.step_names) | set(self.inputs)
        for s in self.steps:
            for ref in sorted(s.references() - known):
                if ref not in namespace:
                    raise ChainError(
                        f"step {s.name!r} refers to {{{ref}}}, which is not an input, a step or "
                        "a defined variable",
                        s.line,
                    )

    def resolve_inputs(self, given: dict[str, Any]) -> dict[str, Any]:
        unknown = set(given) - set(self.inputs)
        if unknown:
            raise ChainError(
                f"unknown input(s) {', '.join(sorted(unknown))}; the chain takes "
                f"{', '.join(self.inputs) or 'no inputs'}"
            )
        values: dict[str, Any] = {}
        for key, default in self.inputs.items():
            if key in given:
                values[key] = given[key]
            elif default is REQUIRED:
                raise ChainError(
                    f"the input {key!r} has no value; pass {key}=...", self.input_lines.get(key)
                )
            else:
                values[key] = default
        return values

    def to_text(self) -> str:
        """The chain in %%chain syntax (what `%chain export` writes)."""
        lines: list[str] = []
        for key, default in self.inputs.items():
            lines.append(f"input {key}" if default is REQUIRED else f"input {key} = {default!r}")
        for s in self.steps:
            head = [s.model] if s.model else []
            head += [f"{k}={v!r}" for k, v in s.params.items()]
            lines.append(f"step {s.name}: {', '.join(head)}".rstrip())
            if s.system:
                lines.append(f"    system: {s.system}")
            elif s.prompt.lstrip().lower().startswith("system:"):
                lines.append("    system:")  # an empty system line keeps the prompt's own
            lines += [f"    {line}" if line else "" for line in s.prompt.split("\n")]
        return "\n".join(lines) + "\n"


def merge_inputs(inputs: Mapping[str, Any] | None, more: dict[str, Any]) -> dict[str, Any]:
    merged = dict(inputs or {})
    both = sorted(set(merged) & set(more))
    if both:
        raise ChainError(f"input(s) {', '.join(both)} given twice (in the mapping and as keywords)")
    merged.update(more)
    return merged
