"""The doctor's report: one row per provider, rendered as plain text, HTML or a pandas
DataFrame, and saved as JSON. Every string in it is passed through redact() on the way in,
so no rendering or saved file can carry a key."""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.redact import redact
from .probes import Probe

__all__ = ["COLUMNS", "DoctorReport", "ProviderCheck"]

#: The table's columns, in order (the text, HTML and DataFrame renderings share them).
COLUMNS: tuple[str, ...] = (
    "provider",
    "key",
    "base URL",
    "proxy",
    "DNS",
    "TCP",
    "TLS",
    "models",
    "default model",
    "clock",
    "status",
)


def _skipped(why: str = "") -> Probe:
    return Probe(None, why)


@dataclass(slots=True)
class ProviderCheck:
    """What the doctor found for one provider. `ok` is None when there was nothing to
    check (no key), False when a check failed; `next_steps` says what to do about it."""

    provider: str
    key: str = ""
    key_present: bool = False
    configured: bool = False  # a key, or (for keyless providers) a base URL set by the user
    base_url: str = ""
    proxy: str = "none"
    dns: Probe = field(default_factory=_skipped)
    tcp: Probe = field(default_factory=_skipped)
    tls: Probe = field(default_factory=_skipped)
    models: Probe = field(default_factory=_skipped)
    models_status: int | None = None
    models_count: int | None = None
    default_model: str = ""
    default_available: bool | None = None
    clock_skew: float | None = None
    next_steps: list[str] = field(default_factory=list)
    timed_out: bool = False

    @property
    def ok(self) -> bool | None:
        probes = (self.dns, self.tcp, self.tls, self.models)
        if self.timed_out or any(p.failed for p in probes) or self.default_available is False:
            return False
        if all(p.ok is None for p in probes):
            return None
        return True

    @property
    def status(self) -> str:
        return {True: "ok", False: "FAIL", None: "skipped"}[self.ok]

    def step(self, text: str) -> None:
        text = redact(text)
        if text not in self.next_steps:
            self.next_steps.append(text)

    def cells(self) -> dict[str, str]:
        default = self.default_model or "-"
        if self.default_available is True:
            default += " (available)"
        elif self.default_available is False:
            default += " (NOT listed)"
        # Date has whole seconds, so the skew is known to about a second.
        clock = "-" if self.clock_skew is None else f"{self.clock_skew:+.0f} s"
        return {
            "provider": self.provider,
            "key": self.key,
            "base URL": self.base_url,
            "proxy": self.proxy,
            "DNS": _cell(self.dns),
            "TCP": _cell(self.tcp),
            "TLS": _cell(self.tls),
            "models": _cell(self.models),
            "default model": default,
            "clock": clock,
            "status": self.status,
        }

    def as_dict(self) -> dict[str, Any]:
        probes = {
            name: {"ok": p.ok, "detail": p.detail, "ms": p.ms, "issuer": p.issuer}
            for name, p in (("dns", self.dns), ("tcp", self.tcp), ("tls", self.tls))
        }
        redacted: dict[str, Any] = _redacted(
            {
                "provider": self.provider,
                "ok": self.ok,
                "key": self.key,
                "configured": self.configured,
                "base_url": self.base_url,
                "proxy": self.proxy,
                **probes,
                "tls_expires": self.tls.expires,
                "models": {
                    "ok": self.models.ok,
                    "detail": self.models.detail,
                    "status": self.models_status,
                    "count": self.models_count,
                },
                "default_model": self.default_model,
                "default_available": self.default_available,
                "clock_skew_s": self.clock_skew,
                "next_steps": list(self.next_steps),
            }
        )
        return redacted


def _cell(p: Probe) -> str:
    if p.ok is None:
        return f"- ({p.detail})" if p.detail else "-"
    mark = "ok" if p.ok else "FAIL"
    timing = f" {p.ms:.0f} ms" if p.ms is not None else ""
    return redact(f"{mark}{timing}" + (f": {p.detail}" if p.detail else ""))


def _redacted(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _redacted(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_redacted(v) for v in value]
    return value


@dataclass(slots=True, repr=False)
class DoctorReport:
    """The doctor's findings for every provider it checked."""

    checks: list[ProviderCheck]
    timeout: float
    offline: bool = False

    @property
    def ok(self) -> bool:
        """False when a configured provider (one with a key) failed a check."""
        return not any(c.configured and c.ok is False for c in self.checks)

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1

    def rows(self) -> list[dict[str, str]]:
        return [c.cells() for c in self.checks]

    def to_text(self) -> str:
        rows = self.rows()
        widths = {c: max([len(c), *(len(r[c]) for r in rows)]) for c in COLUMNS}
        lines = ["  ".join(c.ljust(widths[c]) for c in COLUMNS).rstrip()]
        lines.append("  ".join("-" * widths[c] for c in COLUMNS))
        lines += ["  ".join(r[c].ljust(widths[c]) for c in COLUMNS).rstrip() for r in rows]
        steps = [(c.provider, s) for c in self.checks for s in c.next_steps]
        if steps:
            lines += ["", "Next steps:"]
            lines += [f"  {provider}: {step}" for provider, step in steps]
        lines += ["", self.summary()]
        return redact("\n".join(lines))

    def summary(self) -> str:
        failed = [c.provider for c in self.checks if c.configured and c.ok is False]
        good = [c.provider for c in self.checks if c.ok is True]
        mode = " (offline mode: the bundled emulator)" if self.offline else ""
        if failed:
            return f"Problems with {', '.join(failed)}; working: {', '.join(good) or 'none'}{mode}."
        if good:
            return f"Working: {', '.join(good)}{mode}."
        return "No provider is configured: set a key such as OPENAI_API_KEY, or run Ollama."

    def to_html(self) -> str:
        head = "".join(f"<th>{html.escape(c)}</th>" for c in (*COLUMNS, "next steps"))
        body = []
        for check, row in zip(self.checks, self.rows(), strict=True):
            colour = {True: "#e6f4ea", False: "#fce8e6", None: "#f1f3f4"}[check.ok]
            cells = "".join(f"<td>{html.escape(row[c])}</td>" for c in COLUMNS)
            steps = "<br>".join(html.escape(s) for s in check.next_steps)
            body.append(f'<tr style="background:{colour}">{cells}<td>{steps}</td></tr>')
        table = (
            '<table class="n3-doctor"><thead><tr>'
            + head
            + "</tr></thead><tbody>"
            + "".join(body)
            + "</tbody></table>"
        )
        return redact(table + f"<p>{html.escape(self.summary())}</p>")

    def _repr_html_(self) -> str:
        return self.to_html()

    def __str__(self) -> str:
        return self.to_text()

    def __repr__(self) -> str:  # what a terminal or a notebook's text/plain shows
        return self.to_text()

    def to_pandas(self) -> Any:
        """The table as a pandas DataFrame (needs pandas), next steps in the last column."""
        try:
            import pandas as pd  # optional dependency
        except ImportError as exc:
            raise ImportError("to_pandas() needs pandas: pip install pandas") from exc
        rows = [
            {**row, "next steps": "; ".join(c.next_steps)}
            for c, row in zip(self.checks, self.rows(), strict=True)
        ]
        return pd.DataFrame(rows, columns=[*COLUMNS, "next steps"])

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "timeout_s": self.timeout,
            "offline": self.offline,
            "providers": [c.as_dict() for c in self.checks],
        }

    def to_json(self) -> str:
        return redact(json.dumps(self.as_dict(), indent=2))

    def save(self, path: str | Path) -> Path:
        """Write the report: .json as data, .html as the table, anything else as text."""
        target = Path(path)
        suffix = target.suffix.lower()
        if suffix == ".json":
            text = self.to_json()
        elif suffix in (".html", ".htm"):
            text = self.to_html()
        else:
            text = self.to_text()
        target.write_text(text + "\n", encoding="utf-8")
        return target
