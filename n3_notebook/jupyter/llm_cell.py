"""The %%llm cell runner: the prompt (filled from the notebook) streamed from one model into
one view; several models (or --repeat) go to the comparison runner.

The input transformer turns a `%%llm` cell into an awaited call of this runner, so the
request runs on the kernel's own loop; the cell stays busy (and streams live) until the
answer is complete, unless --background, which returns an LLMHandle at once."""

from __future__ import annotations

from typing import Any

from ..core.errors import ConfigurationError, LLMError
from ..core.template import TemplateError, fill
from .cell_features import cell_message, feature_params
from .compare_cell import run_compare
from .display import answer_bundle
from .errors import CellError
from .launch import launch
from .options import CellOptions, parse_line
from .over_cell import run_over
from .run import StreamRun, label, note
from .session import NotebookSession
from .views import make_view
from .widget import WidgetView

__all__ = ["fill_prompt", "run_llm_cell"]


def fill_prompt(session: NotebookSession, cell: str, magic: str = "%%llm") -> str:
    """The cell body with {name} / {expr} filled from the notebook; never empty."""
    try:
        prompt = fill(cell, session.namespace).strip()
    except TemplateError as exc:
        kind = "Undefined prompt variable" if exc.name else "Prompt error"
        raise CellError(str(exc), kind) from None
    if not prompt:
        raise CellError(
            f"the cell has no prompt. Write the prompt on the lines below {magic}.",
            f"Empty {magic} cell",
        )
    return prompt


async def run_llm_cell(session: NotebookSession, line: str, cell: str) -> Any:
    """Run one %%llm cell; returns None (the answer is displayed) or a handle."""
    opts = parse_line(line)
    if opts.over is not None:
        return await run_over(session, opts, cell)
    prompt = fill_prompt(session, cell)
    if len(opts.models) > 1 or opts.repeat > 1:
        return await run_compare(session, opts, prompt)
    model_spec, hint = await session.model_spec(opts.models)
    provider = session.provider_for(model_spec)
    messages = session.history_messages() if opts.chat else []
    messages.append(cell_message(session, opts, prompt))
    params = {**session.call_params(opts), **feature_params(session, opts)}
    session.hint_once(hint)
    view = make_view(
        session.widgets and not opts.no_widget,
        label(provider),
        note(provider),
        session.settings.update_interval,
        show=session.show_live,
    )
    run = StreamRun(
        provider,
        messages,
        view,
        system=opts.system,
        params=params,
        stream_config=session.stream_config(opts.timeout),
    )

    def on_cancel(cancel: Any) -> None:
        view.on_cancel = cancel

    launched = await launch(
        session,
        run.go(),
        run.label,
        background=opts.background,
        output=opts.output,
        run=run,
        on_cancel=on_cancel,
        on_done=lambda _task: _settle(session, run, opts, prompt),
    )
    if launched is not None:  # --background: the handle
        return launched
    if run.error is not None:
        raise CellError(_error_text(run.error), type(run.error).__name__)
    return None


def _settle(session: NotebookSession, run: StreamRun, opts: CellOptions, prompt: str) -> None:
    """When a stream ends: the live pane becomes static HTML, the result is stored, the chat
    history extended and the answer published."""
    view = run.view
    if isinstance(view, WidgetView):
        session.retire(view.display_id, view.box)
    response = run.response
    if response is None:
        return
    session.keep(response.parsed if opts.schema else response, opts.output)
    if run.state == "done":
        session.remember(prompt, response.content)
        if run.view.show_final():
            fmt = opts.format or session.settings.default_format
            session.publish(answer_bundle(response.content, fmt))


def _error_text(exc: LLMError) -> str:
    text = str(exc)
    if isinstance(exc, ConfigurationError):
        return text
    return f"{text} (what arrived before the error is kept in the output above and in `%llm last`)"
