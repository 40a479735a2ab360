"""One adapter per provider: request building and event mapping on top of core.BaseProvider."""

from .anthropic import AnthropicProvider
from .cohere import CohereProvider
from .emulator import EmulatorProvider
from .gemini import GeminiProvider
from .ollama import OllamaProvider
from .openai import OpenAIProvider

__all__ = [
    "AnthropicProvider",
    "CohereProvider",
    "EmulatorProvider",
    "GeminiProvider",
    "OllamaProvider",
    "OpenAIProvider",
]
