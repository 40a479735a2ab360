"""Per-request records: what arrived (secrets masked) and how the response ended.

Records are created and updated on the server's thread under one lock; readers get
copies.  ``chunks_sent`` counts non-empty body writes (every SSE event or NDJSON line is
one write), ``tokens_sent`` counts the content chunks among them.
"""

from __future__ import annotations

import asyncio
import copy
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["MASK", "SECRET_HEADERS", "SECRET_QUERY_PARAMS", "Recorder", "RequestRecord"]

MASK = "***"
SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "x-api-key", "x-goog-api-key", "api-key", "cookie"}
)
SECRET_QUERY_PARAMS = frozenset({"key", "api_key", "api-key"})
MIN_SCRUB_LENGTH = 6
#: Records kept per emulator; the oldest are dropped beyond this.
MAX_RECORDS = 10_000


@dataclass
class RequestRecord:
    """One request the emulator served.  Counts and ``completed`` are updated just before
    the bytes are handed to the server, so a client that has read a whole response finds
    ``completed`` already true; a disconnect is only known once the emulator sees it (use
    ``wait_for_close``)."""

    id: int
    method: str
    path: str
    query: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    provider: str | None = None
    model: str | None = None
    stream: bool = False
    status: int | None = None
    fault: str | None = None
    opened_at: float = 0.0
    closed_at: float | None = None
    chunks_sent: int = 0
    client_disconnected: bool = False
    completed: bool = False
    tokens_sent: int = 0
    request_id: str | None = None
    first_chunk_at: float | None = None

    @property
    def duration(self) -> float | None:
        return None if self.closed_at is None else self.closed_at - self.opened_at


def _secret_values(value: str) -> list[str]:
    out = [value]
    scheme, _, token = value.partition(" ")
    if token.strip() and scheme.lower() in {"bearer", "basic", "token"}:
        out.append(token.strip())
    return [v for v in out if v]


def _scrub(value: Any, secrets: list[str]) -> Any:
    if isinstance(value, str):
        for secret in secrets:
            if secret in value:
                value = value.replace(secret, MASK)
        return value
    if isinstance(value, dict):
        return {_scrub(k, secrets): _scrub(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v, secrets) for v in value]
    return value


def mask_request(
    headers: Iterable[tuple[str, str]], query: Iterable[tuple[str, str]]
) -> tuple[dict[str, str], dict[str, str], list[str]]:
    """Lower-case, joined headers and query with secrets masked, plus the raw secrets."""
    secrets: list[str] = []
    header_out: dict[str, str] = {}
    header_pairs = [(k.lower(), v) for k, v in headers]
    query_pairs = list(query)
    for name, value in header_pairs:
        if name in SECRET_HEADERS:
            secrets.extend(_secret_values(value))
    for name, value in query_pairs:
        if name.lower() in SECRET_QUERY_PARAMS and value:
            secrets.append(value)
    # Inside other values only secrets long enough to be recognisable are replaced
    # (a 1-character "key" would otherwise mangle every header).
    secrets = sorted({s for s in secrets if len(s) >= MIN_SCRUB_LENGTH}, key=len, reverse=True)
    for name, value in header_pairs:
        shown = MASK if name in SECRET_HEADERS else _scrub(value, secrets)
        header_out[name] = f"{header_out[name]}, {shown}" if name in header_out else shown
    query_out = {
        name: (MASK if name.lower() in SECRET_QUERY_PARAMS else _scrub(value, secrets))
        for name, value in query_pairs
    }
    return header_out, query_out, secrets


class Recorder:
    """The list of RequestRecords of one emulator."""

    def __init__(self, max_records: int = MAX_RECORDS) -> None:
        self._max_records = max_records
        self._lock = threading.Lock()
        self._records: list[RequestRecord] = []
        self._secrets: dict[int, list[str]] = {}
        self._next_id = 1

    def open(
        self,
        method: str,
        path: str,
        headers: Iterable[tuple[str, str]],
        query: Iterable[tuple[str, str]],
    ) -> RequestRecord:
        header_out, query_out, secrets = mask_request(headers, query)
        with self._lock:
            record = RequestRecord(
                id=self._next_id,
                method=method,
                path=path,
                query=query_out,
                headers=header_out,
                opened_at=time.monotonic(),
            )
            self._next_id += 1
            self._records.append(record)
            self._secrets[record.id] = secrets
            if len(self._records) > self._max_records:  # a long-lived emulator stays bounded
                del self._records[: len(self._records) - self._max_records]
        return record

    def update(self, record: RequestRecord, **fields: Any) -> None:
        with self._lock:
            if "body" in fields:
                fields["body"] = _scrub(fields["body"], self._secrets.get(record.id, []))
            for name, value in fields.items():
                setattr(record, name, value)

    def count_chunk(self, record: RequestRecord) -> None:
        with self._lock:
            record.chunks_sent += 1
            if record.first_chunk_at is None:
                record.first_chunk_at = time.monotonic()

    def count_token(self, record: RequestRecord) -> None:
        with self._lock:
            record.tokens_sent += 1

    def close(
        self, record: RequestRecord, *, completed: bool = False, client_disconnected: bool = False
    ) -> None:
        """Mark the response finished; the first call wins (later ones are ignored)."""
        now = time.monotonic()
        with self._lock:
            if record.closed_at is not None:
                return
            record.closed_at = now
            record.completed = completed
            record.client_disconnected = client_disconnected and not completed
            self._secrets.pop(record.id, None)

    # -- readers -------------------------------------------------------------------
    def snapshot(self) -> list[RequestRecord]:
        with self._lock:
            return [copy.deepcopy(r) for r in self._records]

    def get(self, record_or_index: RequestRecord | int) -> RequestRecord | None:
        """A copy of a record, by record (its id) or by list index (``-1`` = newest)."""
        with self._lock:
            if isinstance(record_or_index, RequestRecord):
                found = [r for r in self._records if r.id == record_or_index.id]
                return copy.deepcopy(found[0]) if found else None
            try:
                return copy.deepcopy(self._records[record_or_index])
            except IndexError:
                return None

    def open_count(self) -> int:
        with self._lock:
            return sum(1 for r in self._records if r.closed_at is None)

    def clear(self) -> None:
        with self._lock:
            self._records.clear()
            self._secrets.clear()

    def _closed(self, record_or_index: RequestRecord | int) -> RequestRecord | None:
        record = self.get(record_or_index)
        return record if record is not None and record.closed_at is not None else None

    def wait_for_close_sync(
        self, record_or_index: RequestRecord | int = -1, timeout: float = 2.0
    ) -> RequestRecord:
        deadline = time.monotonic() + timeout
        while True:
            record = self._closed(record_or_index)
            if record is not None:
                return record
            if time.monotonic() >= deadline:
                raise TimeoutError(_timeout_message(self.get(record_or_index), timeout))
            time.sleep(0.002)

    async def wait_for_close(
        self, record_or_index: RequestRecord | int = -1, timeout: float = 2.0
    ) -> RequestRecord:
        deadline = time.monotonic() + timeout
        while True:
            record = self._closed(record_or_index)
            if record is not None:
                return record
            if time.monotonic() >= deadline:
                raise TimeoutError(_timeout_message(self.get(record_or_index), timeout))
            await asyncio.sleep(0.002)


def _timeout_message(record: RequestRecord | None, timeout: float) -> str:
    if record is None:
        return f"no such request record after {timeout}s"
    return f"request {record.id} ({record.method} {record.path}) still open after {timeout}s"
