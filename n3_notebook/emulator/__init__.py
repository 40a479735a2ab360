"""A loopback HTTP server that speaks OpenAI, Anthropic, Gemini, Cohere and Ollama.

It writes each provider's documented wire format by hand (nothing here imports
``n3_notebook.providers`` or ``n3_notebook.core``), answers with deterministic text
(see :mod:`n3_notebook.emulator.text`), injects faults on request (see
:mod:`n3_notebook.emulator.faults`) and records every request with secrets masked.

    with run_emulator(token_delay=0, first_token_delay=0) as emu:
        client = openai.OpenAI(base_url=emu.base_url("openai"), api_key="anything")
"""

from .faults import FAULT_NAMES, Fault, FaultSpecError, parse_fault
from .models import DEMO_MODEL, EMULATOR_MODELS
from .recorder import RequestRecord
from .runner import OFFLINE_API_KEY, Emulator, get_offline_emulator, run_emulator
from .text import Answer, expected_answer

__all__ = [
    "DEMO_MODEL",
    "EMULATOR_MODELS",
    "FAULT_NAMES",
    "OFFLINE_API_KEY",
    "Answer",
    "Emulator",
    "Fault",
    "FaultSpecError",
    "RequestRecord",
    "expected_answer",
    "get_offline_emulator",
    "parse_fault",
    "run_emulator",
]
