"""One notebook's LLM state: settings, providers, chat history, running handles, the last
result, kept chains and recent errors. The magics own one NotebookSession and hand it to
every cell runner; a test makes one with a plain dict as the namespace, no kernel needed."""

from __future__ import annotations

import asyncio
import contextlib
import traceback
from dataclasses import dataclass
from typing import Any

from IPython.display import display as ipython_display
from IPython.display import update_display as ipython_update_display

from ..chain import Chain
from ..core import registry
from ..core.base import BaseProvider
from ..core.errors import ConfigurationError
from ..core.http import DEFAULT_TIMEOUT
from ..core.offline import is_offline
from ..core.tls import verify_from_text
from ..core.types import (
    DEFAULT_CHUNK_TIMEOUT,
    DEFAULT_FIRST_TOKEN_TIMEOUT,
    DEFAULT_REASONING_FIRST_TOKEN_TIMEOUT,
    Message,
    StreamConfig,
)
from .defaults import default_model
from .display import Display
from .errors import CellError
from .handle import LLMHandle
from .retire import close_widgets, new_display_id

__all__ = ["NotebookSession", "Settings"]


@dataclass
class Settings:
    """What the magics' configuration sets (`%config LLMMagics.<name> = ...`)."""

    default_model: str = ""
    max_history: int = 10
    max_concurrent: int = 10
    request_timeout: float = DEFAULT_TIMEOUT
    stream_timeout: float = 0.0  # the library's limits (core/types.py); 0: no limit
    chunk_timeout: float = DEFAULT_CHUNK_TIMEOUT
    first_token_timeout: float = DEFAULT_FIRST_TOKEN_TIMEOUT
    reasoning_first_token_timeout: float = DEFAULT_REASONING_FIRST_TOKEN_TIMEOUT
    verify: str = ""  # TLS trust, as core.tls.verify_from_text reads it
    update_interval: float = 0.05
    default_format: str = "markdown"
    show_hint: bool = True
    cache: bool = False


#: A provider is reused across cells for the same model, mode and event loop.
ProviderKey = tuple[str, str | None, bool, int]


class NotebookSession:
    """The state every cell runner works on.

    `namespace` is the notebook's user namespace (prompts read it, `-o` writes it);
    `widgets` says whether live widgets reach a frontend; `display` publishes outputs."""

    def __init__(
        self,
        settings: Settings | None = None,
        namespace: dict[str, Any] | None = None,
        *,
        widgets: bool = False,
        display: Display = ipython_display,
        update: Display = ipython_update_display,
    ) -> None:
        self.settings = settings or Settings()
        self.namespace: dict[str, Any] = namespace if namespace is not None else {}
        self.widgets = widgets
        self.display = display
        self.update = update
        self.providers: dict[ProviderKey, BaseProvider] = {}
        self.history: list[tuple[str, str]] = []
        self.last: Any = None
        self.handles: list[LLMHandle] = []
        self.chains: dict[str, Chain] = {}
        self.errors: dict[int, str] = {}
        self.hinted = not self.settings.show_hint

    # ------------------------------------------------------------ providers
    def provider(self, model_spec: str) -> BaseProvider:
        """A provider for a model string, reused across cells (same loop, same mode).
        Raises ConfigurationError (unknown model, missing key). A ProviderFactory."""
        name, model = registry.resolve_model(model_spec)
        key = (name, model, is_offline(), id(asyncio.get_running_loop()))
        if key not in self.providers:
            self.providers[key] = registry.get_provider_class(name)(
                model,
                max_concurrent=self.settings.max_concurrent,
                timeout=self.settings.request_timeout or None,
                verify=verify_from_text(self.settings.verify),
            )
        return self.providers[key]

    def provider_for(self, model_spec: str) -> BaseProvider:
        """provider(), with configuration errors shown as a short cell error."""
        try:
            return self.provider(model_spec)
        except ConfigurationError as exc:
            raise CellError(str(exc), type(exc).__name__) from None

    async def model_spec(self, named: list[str]) -> tuple[str, str | None]:
        """(the model a cell uses, a hint to show once or None)."""
        if named:
            return named[0], None
        return await default_model(self.settings.default_model or None)

    def call_params(self, opts: Any) -> dict[str, Any]:
        """A cell's request parameters, plus cache=True when the cell (--cache) or the
        session (`%llm cache on`) asks for the response cache."""
        params: dict[str, Any] = opts.request_params()
        if opts.cache or self.settings.cache:
            params["cache"] = True
        return params

    def stream_config(self, timeout: float | None = None) -> StreamConfig:
        return StreamConfig(
            stream_timeout=timeout or self.settings.stream_timeout or None,
            chunk_timeout=self.settings.chunk_timeout or None,
            first_token_timeout=self.settings.first_token_timeout or None,
            reasoning_first_token_timeout=self.settings.reasoning_first_token_timeout or None,
        )

    async def aclose(self) -> None:
        """Close every provider this session made (their connections)."""
        providers, self.providers = list(self.providers.values()), {}
        for p in providers:
            with contextlib.suppress(Exception):
                await p.aclose()

    # ------------------------------------------------------------ history
    def history_messages(self) -> list[Message]:
        keep = self.settings.max_history
        out: list[Message] = []
        for prompt, answer in self.history[-keep:] if keep else []:
            out += [Message("user", prompt), Message("assistant", answer)]
        return out

    def remember(self, prompt: str, answer: str) -> None:
        self.history.append((prompt, answer))
        keep = self.settings.max_history
        if keep and len(self.history) > keep:
            del self.history[:-keep]

    # ------------------------------------------------------------ handles
    def track(self, handle: LLMHandle) -> None:
        self.handles = [h for h in self.handles if not h.done()]
        self.handles.append(handle)

    def running(self) -> list[LLMHandle]:
        return [h for h in self.handles if not h.done()]

    def cancel(self, everything: bool = False) -> int:
        """Cancel the latest running handle (or all of them); how many were cancelled."""
        running = self.running()
        targets = running if everything else running[-1:]
        for h in targets:
            h.cancel()
        return len(targets)

    # ------------------------------------------------------------ outputs
    def hint_once(self, hint: str | None) -> None:
        if hint and not self.hinted:
            self.hinted = True
            print(hint)

    def publish(self, bundle: dict[str, Any]) -> None:
        """A mime bundle as an ordinary output (kept in the saved notebook)."""
        self.display(bundle, raw=True)

    def show_live(self, widget: Any) -> str:
        """Show a live widget so that it can be replaced when it is done; its display id."""
        display_id = new_display_id()
        self.display(widget, display_id=display_id)
        return display_id

    def retire(self, display_id: str | None, widget: Any) -> None:
        """A finished widget's output becomes static HTML of what it shows (`widget` has
        static_html / static_text) and its models are closed: no live comm is left."""
        if display_id is None or widget is None:
            return
        bundle = {"text/html": widget.static_html(), "text/plain": widget.static_text()}
        self.update(bundle, display_id=display_id, raw=True)
        close_widgets(widget)

    def keep(self, result: Any, output: str | None) -> None:
        """A cell's result: `%llm last`, and the `-o` variable when one was named."""
        self.last = result
        if output:
            self.namespace[output] = result

    def record_error(self, result: Any) -> None:
        """post_run_cell: keep the last error's text as Err[n], for prompts like
        `Explain: {Err[5]}`."""
        exc = getattr(result, "error_in_exec", None) or getattr(result, "error_before_exec", None)
        count = getattr(result, "execution_count", None)
        if exc is None or count is None:
            return
        self.errors[count] = "".join(traceback.format_exception_only(type(exc), exc)).strip()
