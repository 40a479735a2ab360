"""Keeping secrets out of every string we produce.

Keys are registered when a provider reads them (register_secret); redact() replaces every
registered key, any value that looks like a provider key, and credentials in URLs."""

from __future__ import annotations

import re
import threading

MASK = "***"
_MIN_SECRET_LEN = 6
_lock = threading.Lock()
_secrets: set[str] = set()
_pattern: re.Pattern[str] | None = None

# Shapes of real keys, masked even when never registered (e.g. echoed by a proxy).
_KEY_SHAPES = re.compile(
    r"((?<![A-Za-z0-9])(?:sk-(?:ant-|proj-)?[A-Za-z0-9_\-]{8,}|AIza[0-9A-Za-z_\-]{20,}))"
    r"|((?:authorization|x-api-key|x-goog-api-key|api[-_]key)[\"']?\s*[:=]\s*[\"']?(?:Bearer\s+)?)"
    r"([^\s\"',&)]{8,})",
    re.IGNORECASE,
)
#: lowercase substrings one of which every _KEY_SHAPES match contains
_KEY_MARKERS = ("sk-", "aiza", "authorization", "api-key", "api_key")
# A scheme starts where a word does (else a long run of letters costs quadratic time).
_URL_CREDS = re.compile(
    r"(?<![a-z0-9+.\-])(?P<scheme>[a-z][a-z0-9+.\-]*://)[^/\s:@]+(?::[^/\s@]*)?@", re.I
)
_URL_KEY_PARAM = re.compile(r"([?&](?:key|api[_-]?key|token|access_token|auth)=)[^&\s#\"']+", re.I)


def register_secret(value: str | None) -> None:
    """Remember a key so redact() masks it wherever it appears."""
    global _pattern
    if not value or len(value) < _MIN_SECRET_LEN:
        return
    with _lock:
        if value in _secrets:
            return
        _secrets.add(value)
        ordered = sorted(_secrets, key=len, reverse=True)
        _pattern = re.compile("|".join(re.escape(s) for s in ordered))


def redact(text: str) -> str:
    """text with every known secret, key-shaped token and URL credential masked."""
    if not text:
        return text
    pat = _pattern
    if pat is not None:
        text = pat.sub(MASK, text)
    # Each pattern runs only where its literal part occurs: a scan for a substring costs a
    # fraction of a regex pass, and most texts (prompts, answers) contain none of them.
    lowered = text.lower()
    if any(marker in lowered for marker in _KEY_MARKERS):
        text = _KEY_SHAPES.sub(_mask_match, text)
    if "://" in text:
        text = _URL_CREDS.sub(lambda m: f"{m.group('scheme')}{MASK}@", text)
    if "=" in text:
        text = _URL_KEY_PARAM.sub(lambda m: f"{m.group(1)}{MASK}", text)
    return text


def _mask_match(m: re.Match[str]) -> str:
    if m.group(1):
        return MASK
    return f"{m.group(2)}{MASK}"


def mask_url(url: str) -> str:
    """A URL safe to show: user info and key-like query parameters masked."""
    return redact(url)
