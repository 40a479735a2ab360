"""`emulator:demo`: the bundled offline emulator's OpenAI-compatible route. Needs no key;
the emulator is started on loopback the first time it is used."""

from __future__ import annotations

from typing import Any, ClassVar

from ..core.offline import offline_endpoint
from .openai import OpenAIProvider


class EmulatorProvider(OpenAIProvider):
    """The offline demo model (an OpenAI-compatible route of the in-process emulator)."""

    name: ClassVar[str] = "emulator"
    display_name: ClassVar[str] = "offline emulator"
    env_keys: ClassVar[tuple[str, ...]] = ()
    env_base_urls: ClassVar[tuple[str, ...]] = ()
    default_model: ClassVar[str] = "demo"
    requires_key: ClassVar[bool] = False

    def __init__(self, model: str | None = None, **kwargs: Any) -> None:
        if kwargs.get("base_url") is None:
            kwargs["base_url"], kwargs["api_key"] = offline_endpoint("openai")
        super().__init__(model, **kwargs)
        self.offline = True
