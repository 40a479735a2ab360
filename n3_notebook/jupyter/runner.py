"""The async side of %%llm: what the input transformer makes a cell await.

The cell's code becomes `await run_llm_cell(line, body)`, so the request runs on the
kernel's own loop; the cell stays busy (and streams live) until the answer is complete,
unless --background, which returns an LLMHandle at once."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ..core.errors import ConfigurationError, LLMError
from ..core.template import TemplateError, fill
from ..core.types import Message, StreamConfig
from .defaults import default_model
from .errors import CellError
from .handle import LLMHandle
from .launch import launch
from .options import CellOptions, parse_line
from .run import StreamRun
from .views import TextView, widgets_available

if TYPE_CHECKING:
    from .magics import LLMMagics


def _magics() -> LLMMagics:
    from .magics import active

    m = active()
    if m is None:
        raise CellError("run `%load_ext n3_notebook` first", "n3_notebook")
    return m


async def run_llm_cell(line: str, cell: str) -> Any:
    """Run one %%llm cell; returns None (the answer is displayed) or a handle."""
    magics = _magics()
    opts = parse_line(line)
    try:
        prompt = fill(cell, magics.shell.user_ns).strip()
    except TemplateError as exc:
        kind = "Undefined prompt variable" if exc.name else "Prompt error"
        raise CellError(str(exc), kind) from None
    if not prompt:
        raise CellError(
            "the cell has no prompt. Write the prompt on the lines below %%llm.",
            "Empty %%llm cell",
        )
    if len(opts.models) > 1 or opts.repeat > 1:
        from .compare import run_compare

        return await run_compare(magics, opts, prompt)
    spec, hint = await _model_spec(magics, opts)
    provider = magics.provider_for(spec)
    messages = magics.history_messages() if opts.chat else []
    messages.append(Message("user", prompt))
    if hint and not magics.hinted:
        magics.hinted = True
        print(hint)
    run = StreamRun(
        provider,
        messages,
        make_view(magics, opts, label(provider), note(provider)),
        system=opts.system,
        params=request_params(opts),
        stream_config=stream_config(magics, opts.timeout),
    )
    return await start(magics, run, opts, prompt)


async def _model_spec(magics: LLMMagics, opts: CellOptions) -> tuple[str, str | None]:
    if opts.models:
        return opts.models[0], None
    return await default_model(magics.default_model or None)


def label(provider: Any) -> str:
    return f"{provider.name}:{provider.model}"


def note(provider: Any) -> str | None:
    if provider.name == "emulator":
        return "offline demo model"
    if getattr(provider, "offline", False):
        return "offline emulator"
    return None


def request_params(opts: CellOptions) -> dict[str, Any]:
    params = dict(opts.params)
    if opts.temperature is not None:
        params["temperature"] = opts.temperature
    if opts.max_tokens is not None:
        params["max_tokens"] = opts.max_tokens
    return params


def stream_config(magics: LLMMagics, timeout: float | None) -> StreamConfig:
    return StreamConfig(
        stream_timeout=timeout or magics.stream_timeout or None,
        chunk_timeout=magics.chunk_timeout or None,
    )


def make_view(magics: LLMMagics, opts: CellOptions, title: str, subtitle: str | None) -> Any:
    if opts.no_widget or not widgets_available(magics.shell):
        return TextView(title, subtitle, interval=magics.update_interval)
    from .widget import WidgetView

    return WidgetView(title, subtitle, interval=magics.update_interval)


async def start(magics: LLMMagics, run: StreamRun, opts: CellOptions, prompt: str) -> Any:
    """Run the stream as a task; wait for it unless --background."""

    def on_cancel(cancel: Any) -> None:
        run.view.on_cancel = cancel

    launched = await launch(
        magics,
        run.go(),
        run.label,
        background=opts.background,
        output=opts.output,
        run=run,
        on_cancel=on_cancel,
        on_done=lambda t: _settle(magics, run, opts, prompt, t),
    )
    if isinstance(launched, LLMHandle):
        return launched
    if run.error is not None:
        raise CellError(_error_text(run.error), type(run.error).__name__)
    return None


def _settle(magics: LLMMagics, run: StreamRun, opts: CellOptions, prompt: str, task: Any) -> None:
    """When a stream ends: store the result, extend the chat history, publish the answer."""
    response = run.response
    if response is None:
        return
    magics.last = response
    if opts.output:
        magics.shell.user_ns[opts.output] = response
    if run.state == "done":
        magics.remember(prompt, response.content)
        if run.view.show_final():
            publish(response.content, opts.format or magics.default_format)


def publish(text: str, fmt: str) -> None:
    """The answer as an ordinary output (kept in the saved notebook, compared by nbval)."""
    from IPython.display import display

    bundle: dict[str, Any] = {"text/plain": text}
    if fmt == "markdown":
        bundle["text/markdown"] = text
    elif fmt == "code":
        body = text if text.lstrip().startswith("```") else f"```\n{text}\n```"
        bundle["text/markdown"] = body
    elif fmt == "html":
        bundle["text/html"] = text
    elif fmt == "json":
        try:
            bundle["application/json"] = json.loads(text)
            bundle["text/plain"] = json.dumps(bundle["application/json"], indent=2)
        except ValueError:
            pass
    display(bundle, raw=True)


def _error_text(exc: LLMError) -> str:
    text = str(exc)
    if isinstance(exc, ConfigurationError):
        return text
    return f"{text} (what arrived before the error is kept in the output above and in `%llm last`)"


async def run_chain_cell(line: str, cell: str) -> Any:
    from .chain_magics import run_chain_cell as run

    return await run(line, cell)


async def run_chain_line(line: str) -> Any:
    from .chain_magics import run_chain_line as run

    return await run(line)
