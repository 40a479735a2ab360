"""The gunicorn worker class for the service: uvicorn-worker's UvicornWorker on the
workers' event loop (uvloop accepting connections in batches, see loop.py), with the
bounded HTTP protocol (protocol.py) and the service's own access log (token names,
metrics.py) written where gunicorn's access log goes.

    gunicorn -k n3_notebook.serve.worker.Worker -w 2 'n3_notebook.serve.app:app_from_env()'

Needs the `serve` extra (gunicorn, uvicorn-worker)."""

from __future__ import annotations

from typing import Any

from uvicorn_worker import UvicornWorker  # type: ignore[import-untyped]

from .loop import FACTORY
from .metrics import access_logger
from .protocol import PROTOCOL


class Worker(UvicornWorker):  # type: ignore[misc]
    CONFIG_KWARGS = {**UvicornWorker.CONFIG_KWARGS, "loop": FACTORY, "http": PROTOCOL}  # noqa: RUF012

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        access = self.log.access_log
        access_logger.handlers = access.handlers
        access_logger.setLevel(access.level)
        access_logger.propagate = False
        self.config.access_log = False  # the service's lines replace uvicorn's


__all__ = ["Worker"]
