"""One module per provider, each writing that provider's documented wire bytes."""

from .anthropic import AnthropicFormat
from .base import BadRequest, ChatRequest, Context, ProviderFormat
from .cohere import CohereV1Format, CohereV2Format
from .gemini import GeminiFormat
from .ollama import OllamaChatFormat, OllamaGenerateFormat
from .openai import OpenAIFormat

__all__ = [
    "AnthropicFormat",
    "BadRequest",
    "ChatRequest",
    "CohereV1Format",
    "CohereV2Format",
    "Context",
    "GeminiFormat",
    "OllamaChatFormat",
    "OllamaGenerateFormat",
    "OpenAIFormat",
    "ProviderFormat",
]
