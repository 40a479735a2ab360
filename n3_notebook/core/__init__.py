"""Provider-independent core: types, errors, retry policy, base provider, registry."""

from .base import BaseProvider
from .cache import ResponseCache, response_cache
from .catalog import ModelInfo
from .defaults import ModelDeprecationWarning
from .errors import (
    APIConnectionError,
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    ContentFilteredError,
    LLMError,
    LLMTimeoutError,
    MissingAPIKeyError,
    ModelNotFoundError,
    NotFoundError,
    OverloadedError,
    PermissionDeniedError,
    ProviderStreamingNotSupportedError,
    RateLimitError,
    ServerError,
    StreamingNotSupportedError,
    StreamProtocolError,
    StructuredOutputError,
    TLSCertificateError,
    UnknownModelError,
)
from .images import Image, ImageError
from .map_compare import MapComparison, amap_models
from .mapping import MapProgress, MapResult, amap, map_prompts
from .metrics import RequestMetrics
from .offline import is_offline, set_offline
from .registry import create_provider, register_provider, resolve_model
from .retry import RetryConfig
from .tools import Tool
from .types import LLMResponse, Message, StreamChunk, StreamConfig, ToolCall, Usage

__all__ = [
    "APIConnectionError",
    "APIStatusError",
    "AuthenticationError",
    "BadRequestError",
    "BaseProvider",
    "ConfigurationError",
    "ContentFilteredError",
    "Image",
    "ImageError",
    "LLMError",
    "LLMResponse",
    "LLMTimeoutError",
    "MapComparison",
    "MapProgress",
    "MapResult",
    "Message",
    "MissingAPIKeyError",
    "ModelDeprecationWarning",
    "ModelInfo",
    "ModelNotFoundError",
    "NotFoundError",
    "OverloadedError",
    "PermissionDeniedError",
    "ProviderStreamingNotSupportedError",
    "RateLimitError",
    "RequestMetrics",
    "ResponseCache",
    "RetryConfig",
    "ServerError",
    "StreamChunk",
    "StreamConfig",
    "StreamProtocolError",
    "StreamingNotSupportedError",
    "StructuredOutputError",
    "TLSCertificateError",
    "Tool",
    "ToolCall",
    "UnknownModelError",
    "Usage",
    "amap",
    "amap_models",
    "create_provider",
    "is_offline",
    "map_prompts",
    "register_provider",
    "resolve_model",
    "response_cache",
    "set_offline",
]
