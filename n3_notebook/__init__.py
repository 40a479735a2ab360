"""n3_notebook: async, streaming, cancellable LLM calls for Jupyter and plain Python.

`%load_ext n3_notebook` adds the %%llm and %%chain magics. The provider core
(OpenAIProvider, AnthropicProvider, GeminiProvider, CohereProvider, OllamaProvider) works
without IPython. Names are imported lazily so `import n3_notebook` stays fast.
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

from ._version import __version__ as __version__

# Library logging stays silent unless the application configures it.
logging.getLogger("n3_notebook").addHandler(logging.NullHandler())

_EXPORTS: dict[str, str] = {
    "APIConnectionError": "core.errors",
    "APIStatusError": "core.errors",
    "AnthropicProvider": "providers.anthropic",
    "AuthenticationError": "core.errors",
    "BadRequestError": "core.errors",
    "BaseProvider": "core.base",
    "Chain": "chain.model",
    "ChainError": "chain.spec",
    "ChainEvent": "chain.events",
    "ChainResult": "chain.events",
    "ChainSpec": "chain.spec",
    "CohereProvider": "providers.cohere",
    "ComparisonResult": "core.compare",
    "ConfigurationError": "core.errors",
    "ContentFilteredError": "core.errors",
    "DoctorReport": "doctor.report",
    "EmulatorProvider": "providers.emulator",
    "GeminiProvider": "providers.gemini",
    "Image": "core.images",
    "ImageError": "core.images",
    "LLMError": "core.errors",
    "LLMResponse": "core.types",
    "LLMTimeoutError": "core.errors",
    "MapComparison": "core.map_compare",
    "MapProgress": "core.mapping",
    "MapResult": "core.mapping",
    "Message": "core.types",
    "MissingAPIKeyError": "core.errors",
    "ModelDeprecationWarning": "core.defaults",
    "ModelInfo": "core.catalog",
    "ModelNotFoundError": "core.errors",
    "NDJSONDecoder": "wire.ndjson",
    "NotFoundError": "core.errors",
    "OllamaProvider": "providers.ollama",
    "OpenAIProvider": "providers.openai",
    "OverloadedError": "core.errors",
    "PermissionDeniedError": "core.errors",
    "ProviderStreamingNotSupportedError": "core.errors",
    "RateLimitError": "core.errors",
    "RequestMetrics": "core.metrics",
    "ResponseCache": "core.cache",
    "RetryConfig": "core.retry",
    "SSEDecoder": "wire.sse",
    "SSEEvent": "wire.sse",
    "ServerError": "core.errors",
    "Step": "chain.spec",
    "StepResult": "chain.events",
    "StreamChunk": "core.types",
    "StreamConfig": "core.types",
    "StreamProtocolError": "core.errors",
    "StreamingNotSupportedError": "core.errors",
    "StructuredOutputError": "core.errors",
    "TLSCertificateError": "core.errors",
    "Tool": "core.tools",
    "ToolCall": "core.types",
    "UnknownModelError": "core.errors",
    "Usage": "core.types",
    "amap": "core.mapping",
    "amap_models": "core.map_compare",
    "create_provider": "core.registry",
    "is_offline": "core.offline",
    "map_prompts": "core.mapping",
    "parse_chain": "chain.model",
    "register_provider": "core.registry",
    "resolve_model": "core.registry",
    "response_cache": "core.cache",
    "run_doctor": "doctor.run",
    "run_emulator": "emulator",
    "set_offline": "core.offline",
}

__all__ = [
    "APIConnectionError",
    "APIStatusError",
    "AnthropicProvider",
    "AuthenticationError",
    "BadRequestError",
    "BaseProvider",
    "Chain",
    "ChainError",
    "ChainEvent",
    "ChainResult",
    "ChainSpec",
    "CohereProvider",
    "ComparisonResult",
    "ConfigurationError",
    "ContentFilteredError",
    "DoctorReport",
    "EmulatorProvider",
    "GeminiProvider",
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
    "NDJSONDecoder",
    "NotFoundError",
    "OllamaProvider",
    "OpenAIProvider",
    "OverloadedError",
    "PermissionDeniedError",
    "ProviderStreamingNotSupportedError",
    "RateLimitError",
    "RequestMetrics",
    "ResponseCache",
    "RetryConfig",
    "SSEDecoder",
    "SSEEvent",
    "ServerError",
    "Step",
    "StepResult",
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
    "load_ipython_extension",
    "map_prompts",
    "parse_chain",
    "register_provider",
    "resolve_model",
    "response_cache",
    "run_doctor",
    "run_emulator",
    "set_offline",
    "unload_ipython_extension",
]


#: Subpackages reachable as attributes without their own import (`n3_notebook.log.query()`).
_SUBMODULES = frozenset({"log"})


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'n3_notebook' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


def load_ipython_extension(ipython: Any) -> None:
    """`%load_ext n3_notebook`: register %%llm, %%chain and the cell transformer."""
    from .jupyter.extension import load  # lazy: the notebook stack loads only here

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    from .jupyter.extension import unload  # lazy, as above

    unload(ipython)


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from .chain import (
        Chain,
        ChainError,
        ChainEvent,
        ChainResult,
        ChainSpec,
        Step,
        StepResult,
        parse_chain,
    )
    from .core.base import BaseProvider
    from .core.cache import ResponseCache, response_cache
    from .core.catalog import ModelInfo
    from .core.compare import ComparisonResult
    from .core.defaults import ModelDeprecationWarning
    from .core.errors import (
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
    from .core.images import Image, ImageError
    from .core.map_compare import MapComparison, amap_models
    from .core.mapping import MapProgress, MapResult, amap, map_prompts
    from .core.metrics import RequestMetrics
    from .core.offline import is_offline, set_offline
    from .core.registry import create_provider, register_provider, resolve_model
    from .core.retry import RetryConfig
    from .core.tools import Tool
    from .core.types import LLMResponse, Message, StreamChunk, StreamConfig, ToolCall, Usage
    from .doctor import DoctorReport, run_doctor
    from .emulator import run_emulator
    from .providers import (
        AnthropicProvider,
        CohereProvider,
        EmulatorProvider,
        GeminiProvider,
        OllamaProvider,
        OpenAIProvider,
    )
    from .wire import NDJSONDecoder, SSEDecoder, SSEEvent
