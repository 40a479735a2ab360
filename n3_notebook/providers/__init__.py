"""One adapter per provider: request building and event mapping on top of core.BaseProvider.

Importing the providers subscribes the call log (n3_notebook.log) to every request."""

from .. import log as _log  # noqa: F401  (subscribes the call log)
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
