"""Pure, I/O-free stream decoders: SSE and NDJSON (bytes in, events out)."""

from .ndjson import NDJSONDecoder
from .sse import SSEDecoder, SSEEvent

__all__ = ["NDJSONDecoder", "SSEDecoder", "SSEEvent"]
