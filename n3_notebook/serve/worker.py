"""The gunicorn worker class for the service: uvicorn-worker's UvicornWorker on the
workers' event loop (uvloop accepting connections in batches, see loop.py).

    gunicorn -k n3_notebook.serve.worker.Worker -w 2 'n3_notebook.serve.app:app_from_env()'

Needs the `serve` extra (gunicorn, uvicorn-worker)."""

from __future__ import annotations

from uvicorn_worker import UvicornWorker  # type: ignore[import-untyped]

from .loop import FACTORY


class Worker(UvicornWorker):
    CONFIG_KWARGS = {**UvicornWorker.CONFIG_KWARGS, "loop": FACTORY}  # noqa: RUF012


__all__ = ["Worker"]
