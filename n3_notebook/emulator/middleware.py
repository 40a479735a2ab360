"""ASGI middleware that opens a RequestRecord per HTTP request and tracks its response."""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .recorder import Recorder
from .streaming import RECORD_SCOPE_KEY, RECORDER_SCOPE_KEY

__all__ = ["RecordingMiddleware"]

_REQUEST_ID_HEADERS = (b"request-id", b"x-request-id")


class RecordingMiddleware:
    def __init__(self, app: ASGIApp, recorder: Recorder) -> None:
        self.app = app
        self.recorder = recorder

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        recorder = self.recorder
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        query = _parse_query(scope.get("query_string", b""))
        record = recorder.open(scope["method"], scope["path"], headers, query)
        scope[RECORD_SCOPE_KEY] = record
        scope[RECORDER_SCOPE_KEY] = recorder

        async def recording_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                fields: dict[str, object] = {"status": message["status"]}
                for name, value in message.get("headers", []):
                    if name.lower() in _REQUEST_ID_HEADERS:
                        fields["request_id"] = value.decode("latin-1")
                recorder.update(record, **fields)
            # Recorded before the send: once a client has read a chunk (or the end of
            # the response), the record already says so, with no race against this task.
            elif message["type"] == "http.response.body":
                if message.get("body"):
                    recorder.count_chunk(record)
                if not message.get("more_body", False):
                    recorder.close(record, completed=True)
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            recorder.close(record)


def _parse_query(raw: bytes) -> list[tuple[str, str]]:
    return parse_qsl(raw.decode("latin-1"), keep_blank_values=True)
