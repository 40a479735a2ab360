"""The response cache: answers kept in SQLite, so a re-run costs no request.

Opt-in per call (`cache=True`). The key is a SHA-256 of the provider, its endpoint
("offline" for the bundled emulator, else the base URL), the request path and the whole
request body as the adapter builds it without streaming: model, messages, system and every
parameter that can change the answer, and nothing else (the API key travels in headers and
never enters the key or the file).

Storage is the standard library's sqlite3 rather than diskcache: diskcache is itself a
wrapper over SQLite whose values are pickles (a shared cache file would run code when read),
while one small table of JSON values needs no more than sqlite3 in WAL mode with a busy
timeout, which lets two kernels read and write the same file at once and keeps every write
atomic (a kernel killed mid-write leaves the previous state). The file lives in
platformdirs' user cache directory, or in N3_CACHE_DIR. A file that cannot be opened or is
not a database is reported once (a RuntimeWarning) and bypassed: calls go to the provider.

Another store can stand in for the file (use_response_cache: the service installs its Redis
cache, serve/redis_cache.py, when N3_REDIS_URL is set); it keeps the same keys and the same
JSON values (encode_response / decode_response).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
import threading
import time
import warnings
from collections.abc import AsyncGenerator, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import orjson
import platformdirs

from .collect import ResponseBuilder
from .http import RequestSpec
from .metrics import logger
from .types import LLMResponse, StreamChunk, Usage

__all__ = [
    "CACHE_DIR_ENV",
    "CacheBackend",
    "CacheStats",
    "ResponseCache",
    "cache_dir",
    "cache_key",
    "cacheable",
    "cached_batches",
    "decode_response",
    "encode_response",
    "response_cache",
    "use_response_cache",
]

CACHE_DIR_ENV = "N3_CACHE_DIR"
FILENAME = "responses.sqlite3"
BUSY_TIMEOUT_MS = 10_000
SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    created REAL NOT NULL,
    value BLOB NOT NULL
)
"""


def cache_dir() -> Path:
    """N3_CACHE_DIR if set, else the user's cache directory for n3_notebook."""
    override = os.environ.get(CACHE_DIR_ENV)
    if override:
        return Path(override).expanduser()
    return Path(platformdirs.user_cache_dir("n3_notebook", appauthor=False))


def cache_key(provider: str, endpoint: str, spec: RequestSpec) -> str:
    """The key of a request (see the module docstring); `spec` is the non-streaming one."""
    params = {k: v for k, v in spec.params.items() if k.lower() != "key"}
    material = {
        "provider": provider,
        "endpoint": endpoint,
        "path": spec.path,
        "body": spec.json,
        "params": params,
    }
    blob = orjson.dumps(material, option=orjson.OPT_SORT_KEYS, default=str)
    return hashlib.sha256(blob).hexdigest()


@dataclass(frozen=True, slots=True)
class CacheStats:
    """Hits and misses in this process, entries and bytes on disk; `error` is why the
    cache is bypassed (None while it works)."""

    path: str
    entries: int
    size_bytes: int
    hits: int
    misses: int
    writes: int
    error: str | None


def encode_response(response: LLMResponse) -> bytes:
    """An answer as the JSON a cache keeps (never a pickle: reading runs no code)."""
    meta = {k: v for k, v in response.metadata.items() if k != "cached"}
    return orjson.dumps(
        {
            "content": response.content,
            "model": response.model,
            "provider": response.provider,
            "finish_reason": response.finish_reason,
            "raw_finish_reason": response.raw_finish_reason,
            "usage": [response.usage.input_tokens, response.usage.output_tokens],
            "request_id": response.request_id,
            "reasoning": response.reasoning,
            "metadata": meta,
        },
        default=str,
    )


def decode_response(blob: bytes, latency: float) -> LLMResponse:
    """A kept answer back, marked metadata["cached"] = True; ValueError / KeyError /
    TypeError when the blob is not one."""
    data = orjson.loads(blob)
    meta = dict(data.get("metadata") or {})
    meta["cached"] = True
    i, o = data["usage"]
    return LLMResponse(
        content=data["content"],
        model=data["model"],
        provider=data["provider"],
        finish_reason=data["finish_reason"],
        usage=Usage.of(i, o),
        raw_finish_reason=data["raw_finish_reason"],
        latency=latency,
        time_to_first_token=latency,
        request_id=data["request_id"],
        retries=0,
        metadata=meta,
        reasoning=data.get("reasoning"),
    )


def cacheable(response: LLMResponse) -> bool:
    """Only complete text answers are kept (not errors, cancels, max_chunks cut-offs, or
    tool calls, whose running has effects)."""
    return (
        response.finish_reason not in (None, "error", "cancelled")
        and not response.metadata.get("stopped_by")
        and not response.tool_calls
    )


class CacheBackend(Protocol):
    """What the calls need of a response cache (ResponseCache, or the service's Redis one).
    Every method answers without raising: a store that fails is a miss."""

    @property
    def path(self) -> object: ...

    def get(self, key: str) -> LLMResponse | None: ...

    def put(self, key: str, response: LLMResponse) -> bool: ...

    def clear(self) -> int: ...

    def stats(self) -> CacheStats: ...

    def close(self) -> None: ...


class ResponseCache:
    """One SQLite file of answers. Thread-safe; any number of processes may share it."""

    def __init__(self, directory: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(directory if directory is not None else cache_dir()) / FILENAME
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self.error: str | None = None
        self.hits = 0
        self.misses = 0
        self.writes = 0

    # -------------------------------------------------------------- connection
    def _connect(self) -> sqlite3.Connection | None:
        if self.error is not None:
            return None
        if self._conn is not None:
            return self._conn
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                self.path, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False
            )
            try:
                conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("PRAGMA synchronous = NORMAL")
                conn.execute(_SCHEMA)
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                conn.commit()
            except BaseException:
                conn.close()
                raise
        except (sqlite3.Error, OSError) as exc:
            self._disable(exc)
            return None
        self._conn = conn
        return conn

    def _disable(self, exc: BaseException) -> None:
        """Report once, then bypass the cache for the rest of the process."""
        if self.error is not None:
            return
        self.error = f"{type(exc).__name__}: {exc}"
        message = (
            f"The response cache at {self.path} cannot be used ({self.error}); requests go "
            "to the provider without it. Delete the file (or set N3_CACHE_DIR to another "
            "directory) to start a fresh cache."
        )
        logger.warning(message)
        warnings.warn(message, RuntimeWarning, stacklevel=3)
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()
            self._conn = None

    # -------------------------------------------------------------------- access
    def get(self, key: str) -> LLMResponse | None:
        """The cached answer (metadata["cached"] = True), or None on a miss."""
        start = time.perf_counter()
        with self._lock:
            conn = self._connect()
            if conn is None:
                return None
            try:
                row = conn.execute("SELECT value FROM responses WHERE key = ?", (key,)).fetchone()
            except sqlite3.Error as exc:
                self._disable(exc)
                return None
            if row is None:
                self.misses += 1
                return None
            try:
                response = decode_response(row[0], time.perf_counter() - start)
            except (ValueError, KeyError, TypeError):
                self.misses += 1  # an entry we cannot read is a miss (it will be rewritten)
                return None
            self.hits += 1
            return response

    def put(self, key: str, response: LLMResponse) -> bool:
        """Keep a complete answer; False when it is not kept (incomplete, or no cache)."""
        if not cacheable(response):
            return False
        blob = encode_response(response)
        with self._lock:
            conn = self._connect()
            if conn is None:
                return False
            try:
                with conn:
                    conn.execute(
                        "INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?, ?)",
                        (key, response.provider, response.model, time.time(), blob),
                    )
            except sqlite3.Error as exc:
                self._disable(exc)
                return False
            self.writes += 1
            return True

    def clear(self) -> int:
        """Delete every entry; how many there were."""
        with self._lock:
            conn = self._connect()
            if conn is None:
                return 0
            try:
                with conn:
                    return conn.execute("DELETE FROM responses").rowcount
            except sqlite3.Error as exc:
                self._disable(exc)
                return 0

    def stats(self) -> CacheStats:
        entries = 0
        with self._lock:
            conn = self._connect()
            if conn is not None:
                try:
                    entries = conn.execute("SELECT COUNT(*) FROM responses").fetchone()[0]
                except sqlite3.Error as exc:
                    self._disable(exc)
        size = 0
        for suffix in ("", "-wal"):
            with contextlib.suppress(OSError):
                size += os.stat(str(self.path) + suffix).st_size
        return CacheStats(
            str(self.path), entries, size, self.hits, self.misses, self.writes, self.error
        )

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.close()
                self._conn = None

    def __repr__(self) -> str:
        state = f"bypassed: {self.error}" if self.error else f"{self.hits} hits"
        return f"<ResponseCache {self.path} ({state})>"


_default: ResponseCache | None = None
_override: CacheBackend | None = None
_default_lock = threading.Lock()


def use_response_cache(cache: CacheBackend | None) -> CacheBackend | None:
    """Make `cache` the process-wide cache in place of the SQLite file (None: the file
    again); returns the one it replaces (None: the file)."""
    global _override
    with _default_lock:
        previous, _override = _override, cache
    return previous


def response_cache() -> CacheBackend:
    """The process-wide cache: the one given to use_response_cache, else the file in
    cache_dir() (a new one when N3_CACHE_DIR changes)."""
    global _default
    if _override is not None:
        return _override
    directory = cache_dir()
    with _default_lock:
        if _default is None or _default.path.parent != directory:
            if _default is not None:
                _default.close()
            _default = ResponseCache(directory)
        return _default


def _replay(response: LLMResponse) -> list[StreamChunk]:
    """A cached answer as the chunks a stream would have given: the text, then the end."""
    meta: Mapping[str, Any] = response.metadata
    final = StreamChunk("", response.finish_reason, response.model, response.usage, dict(meta))
    if not response.content:
        return [final]
    return [StreamChunk(response.content, None, response.model), final]


async def cached_batches(
    cache: CacheBackend,
    key: str,
    provider: str,
    model: str,
    batches: AsyncGenerator[list[StreamChunk], None],
    on_hit: Callable[[LLMResponse], None] | None = None,
) -> AsyncGenerator[list[StreamChunk], None]:
    """A stream through the cache: a hit replays at once (the request is never sent;
    `on_hit` hears of it), a miss streams `batches` and keeps the answer once it ended
    complete."""
    try:
        hit = cache.get(key)
        if hit is not None:
            if on_hit is not None:
                on_hit(hit)
            yield _replay(hit)
            return
        builder = ResponseBuilder(provider, model)
        async for batch in batches:
            for chunk in batch:
                builder.add(chunk)
            yield batch
        cache.put(key, builder.build())
    finally:
        await batches.aclose()
