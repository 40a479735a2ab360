"""`python -m n3_notebook serve FILE [--host 127.0.0.1] [--port 8000] [--workers N] ...`

FILE is a chain file (the %%chain syntax; see n3_notebook.serve.loader) or a notebook whose
`%%chain NAME` cells define the chains. The file is checked here first (a syntax error,
an unknown model or a missing key stops the command before any worker starts), then
uvicorn serves the app factory `n3_notebook.serve.app:app_from_env` with N workers; the
file path and the settings reach the workers through N3_SERVE_* environment variables.

On SIGTERM (or Ctrl-C) the server stops accepting, running requests may finish for the
grace period, then they are stopped cleanly (streams end with an `error` event of type
"shutdown" and `done`). With several workers, /metrics covers all of them (a temporary
PROMETHEUS_MULTIPROC_DIR unless one is set)."""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from typing import Any

from .app import create_app
from .loader import ChainFileError, load_chains
from .loop import FACTORY as LOOP_FACTORY
from .settings import (
    DEFAULT_GRACE_PERIOD,
    DEFAULT_MAX_CONCURRENT,
    DEFAULT_MODEL_ENV,
    FILE_ENV,
    GRACE_PERIOD_ENV,
    MAX_CONCURRENT_ENV,
)

APP_FACTORY = "n3_notebook.serve.app:app_from_env"
#: Connections the kernel queues for us (Linux caps it at net.core.somaxconn).
BACKLOG = 4096
#: uvicorn's own backstop after the app's grace period (it cancels what still runs).
BACKSTOP = 5


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m n3_notebook serve",
        description="Serve the chains of a chain file or notebook as HTTP endpoints "
        "(JSON and Server-Sent Events).",
    )
    p.add_argument("file", metavar="FILE", help="a chain file (.n3) or a notebook (.ipynb)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    p.add_argument("--port", type=int, default=8000, help="port (default: %(default)s)")
    p.add_argument("--workers", type=int, default=1, help="worker processes (default: 1)")
    p.add_argument(
        "--max-concurrent",
        type=int,
        default=None,
        metavar="N",
        help=f"requests one worker serves at once; more get 503 (default: ${MAX_CONCURRENT_ENV} "
        f"or {DEFAULT_MAX_CONCURRENT})",
    )
    p.add_argument(
        "--grace-period",
        type=float,
        default=None,
        metavar="S",
        help=f"seconds running requests may go on after SIGTERM (default: ${GRACE_PERIOD_ENV} "
        f"or {DEFAULT_GRACE_PERIOD:g})",
    )
    p.add_argument(
        "--default-model", default=None, metavar="MODEL", help="model for steps that name none"
    )
    p.add_argument(
        "--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"]
    )
    p.add_argument("--no-access-log", action="store_true", help="do not log every request")
    return p


def raise_fd_limit() -> None:
    """Thousands of streams need thousands of sockets: soft open-file limit up to the hard one."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard == resource.RLIM_INFINITY:
            hard = 1 << 20
        if soft < hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ImportError, ValueError, OSError):  # pragma: no cover - not POSIX, or not allowed
        pass


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.workers < 1:
        print("--workers must be at least 1", file=sys.stderr)
        return 2
    path = os.path.abspath(args.file)
    os.environ[FILE_ENV] = path
    if args.max_concurrent is not None:
        os.environ[MAX_CONCURRENT_ENV] = str(args.max_concurrent)
    if args.grace_period is not None:
        os.environ[GRACE_PERIOD_ENV] = repr(args.grace_period)
    if args.default_model:
        os.environ[DEFAULT_MODEL_ENV] = args.default_model
    try:
        chains = load_chains(path)
        app = create_app(chains)  # checks models and keys now, before any worker starts
    except (ChainFileError, ValueError) as exc:
        print(f"cannot serve {args.file}: {exc}", file=sys.stderr)
        return 2
    grace = app.state.n3.lifecycle.grace_period
    del app
    raise_fd_limit()
    metrics_dir = None
    if args.workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # One /metrics over every worker (prometheus_client's multiprocess mode).
        metrics_dir = tempfile.mkdtemp(prefix="n3-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    import uvicorn

    logging.getLogger("n3_notebook").setLevel(logging.WARNING)
    url = f"http://{args.host}:{args.port}"
    print(
        f"serving {', '.join(chains)} from {args.file} on {url} "
        f"({args.workers} worker{'s' if args.workers > 1 else ''}; docs at {url}/docs)",
        flush=True,
    )
    try:
        _run(uvicorn, args, grace)
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0


def _run(uvicorn: Any, args: argparse.Namespace, grace: float) -> None:
    """uvicorn.run's two cases (one process, or a supervisor of N workers), always on a
    socket bound here, so every worker serves it through our accepting listener (loop.py)."""
    config = uvicorn.Config(
        APP_FACTORY,
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=args.log_level,
        access_log=not args.no_access_log,
        lifespan="on",
        backlog=BACKLOG,
        loop=LOOP_FACTORY,
        timeout_graceful_shutdown=int(grace) + BACKSTOP,
    )
    sock = config.bind_socket()
    if args.workers == 1:
        uvicorn.Server(config).run(sockets=[sock])
        return
    import inspect

    from uvicorn.supervisors import Multiprocess

    if "target" in inspect.signature(Multiprocess).parameters:  # older uvicorn
        Multiprocess(config, target=uvicorn.Server(config).run, sockets=[sock]).run()  # type: ignore[call-arg]
    else:  # each worker makes its own Server from the config
        Multiprocess(config, sockets=[sock]).run()
